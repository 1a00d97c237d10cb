import Foundation
import GRPCCore
import JobWorkerAPI
import JobWorkerTestPrograms
import SwiftProtobuf
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// Random and mutated request bodies for every method, over the real transport.
@Suite("Fuzzed requests", .timeLimit(.minutes(3)))
struct FuzzTests {
    /// A valid request of each method, to mutate.
    static func seeds(job: String) throws -> [String: [UInt8]] {
        [
            "StartJob": try Jobworker_V1_StartJobRequest.with {
                $0.command = "/bin/true"
                $0.args = ["a", "b"]
                $0.limits = .with { $0.memoryBytes = 64 << 20 }
                $0.env = ["A": "1", "B_2": "two"]
                $0.workingDir = "/usr"
            }.serializedBytes(),
            "StopJob": try Jobworker_V1_StopJobRequest.with {
                $0.id = job
                $0.gracePeriodMs = 10
            }.serializedBytes(),
            "GetJobStatus": try Jobworker_V1_GetJobStatusRequest.with { $0.id = job }.serializedBytes(),
            "StreamJobOutput": try Jobworker_V1_StreamJobOutputRequest.with {
                $0.id = job
                $0.offset = 3
            }.serializedBytes(),
            "ListJobs": [],
            "WaitJob": try Jobworker_V1_WaitJobRequest.with { $0.id = job }.serializedBytes(),
            "SignalJob": try Jobworker_V1_SignalJobRequest.with {
                $0.id = job
                $0.signal = 10
            }.serializedBytes(),
        ]
    }

    @Test(
        "≥ 300 random and mutated bodies for every RPC: never INTERNAL or UNKNOWN, the server alive, no descriptor kept"
    )
    func fuzz() async throws {
        // JOBWORKER_FUZZ_SEED=N tries other bodies; CI runs the fixed seed.
        let seed = ProcessInfo.processInfo.environment["JOBWORKER_FUZZ_SEED"].flatMap { UInt64($0) }
        var generator = SplitMix64(seed: seed ?? 0x6a6f_6277_6f72_6b65)
        let pki = try TestPKI()
        let descriptorsBefore = try openDescriptors()
        try await withTLSServer(pki: pki) { server in
            try await withGRPCClient(transport: try server.client(pki.security(name: "fuzz-admin", role: "admin"))) {
                client in
                let job = try await Jobworker_V1_JobWorker.Client(wrapping: client).startJob(
                    .with {
                        $0.command = helperPath
                        $0.args = ["echo-args", "hello"]
                    }
                ).status.id
                _ = try await server.worker.waitUntilEnded(try #require(JobID(job)))
                let seeds = try Self.seeds(job: job)
                for method in allMethods {
                    let seed = try #require(seeds[method.method])
                    var codes: [String: Int] = [:]
                    for round in 0..<320 {
                        let body =
                            round % 4 == 0
                            ? generator.randomBytes(count: Int.random(in: 0..<64, using: &generator))
                            : generator.mutate(seed)
                        let outcome = await client.rawCall(method, messages: [body], timeout: .seconds(5))
                        codes["\(outcome.code.map { "\($0)" } ?? "ok")", default: 0] += 1
                        #expect(
                            outcome.code != .internalError && outcome.code != .unknown,
                            "\(method.method) \(body): \(outcome)")
                    }
                    print("fuzz \(method.method): \(codes.sorted { $0.key < $1.key })")
                }
                // Alive: a well-formed call still works.
                _ = try await Jobworker_V1_JobWorker.Client(wrapping: client).listJobs(.init())
            }
            await server.transport.waitUntilOpenConnections(atMost: 0)
            // Jobs a mutated StartJob started have ended (their commands are /bin/true or nothing).
            for status in server.worker.list() where status.state == .running {
                _ = try await server.worker.stop(status.id, gracePeriod: .zero)
            }
            #expect(server.worker.openOutputReaders == 0)
        }
        #expect(try openDescriptors() == descriptorsBefore)
    }

    private func openDescriptors() throws -> Set<String> {
        Set(
            try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { name in
                try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)")
            }.filter { !$0.hasPrefix("/proc/") })
    }
}

/// Random and mutated bodies, from a seeded generator so that a failing body can be found again.
extension SplitMix64 {
    mutating func randomBytes(count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    /// `seed` with a few bytes changed, inserted, removed, or cut short.
    mutating func mutate(_ seed: [UInt8]) -> [UInt8] {
        var bytes = seed
        for _ in 0..<Int.random(in: 1...4, using: &self) {
            switch Int.random(in: 0..<5, using: &self) {
            case 0 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &self)] = UInt8.random(in: 0...255, using: &self)
            case 1:
                bytes.insert(UInt8.random(in: 0...255, using: &self), at: Int.random(in: 0...bytes.count, using: &self))
            case 2 where !bytes.isEmpty:
                bytes.remove(at: Int.random(in: 0..<bytes.count, using: &self))
            case 3 where !bytes.isEmpty:
                bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &self)))
            default:
                bytes += randomBytes(count: Int.random(in: 1...8, using: &self))
            }
        }
        return bytes
    }
}
