import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import JobWorkerAPI
import JobWorkerTestPrograms
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// An upgrade: SIGTERM to a server with running jobs and a live output stream, a new server on
/// the same state directory, and the reader resuming there.
@Suite(
    "Upgrades keep jobs", .serialized,
    .enabled(if: canUseCgroups, "runs jobworkerd as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(2)))
struct UpgradeTests {
    @Test(
        "SIGTERM ends the output stream with UNAVAILABLE and leaves the job running; the next server adopts it, the reader resumes from its offset and gets every byte once, and the exit code is recorded"
    )
    func restartKeepsJobsAndOutput() async throws {
        let half = 251 * 4_000  // the pattern goes on across the halves
        let visible = try TestPrograms.makeJobVisibleDirectory()
        defer { try? FileManager.default.removeItem(atPath: visible) }
        let fifo = visible + "/fifo"
        #expect(mkfifo(fifo, 0o644) == 0)
        let first = try RunningDaemon(leavingJobsRunning: true)
        let id = try jobctl("start", "--", helperPath, "pattern-fifo-pattern", "\(half)", fifo, daemon: first).text
            .trimmingCharacters(in: .newlines)

        let output = ReceivedOutput()
        let server = first.process.processIdentifier
        // Read the first half, then ask the server to stop while the stream waits for more.
        let ending = await statusCode {
            try await first.withAdminClient { client in
                try await client.streamJobOutput(.with { $0.id = id }) { response in
                    var terminated = false
                    for try await message in response.messages {
                        output.append(message)
                        if output.count == half && !terminated {
                            terminated = true
                            kill(server, SIGTERM)
                        }
                    }
                }
            }
        }
        var received: Data { output.bytes }
        #expect(ending == .unavailable, "the stream ends with UNAVAILABLE when the server drains")
        #expect(received.count == half)
        #expect(first.stop() == 0)

        let second = try RunningDaemon(restarting: first)
        let adopted = try jobctl("status", "--json", id, daemon: second)
        let state = (try JSONSerialization.jsonObject(with: adopted.output) as? [String: Any])?["state"] as? String
        #expect(state == "running", "\(adopted)")
        let gate = try #require(FileHandle(forWritingAtPath: fifo))
        gate.write(Data("go\n".utf8))
        try gate.close()
        try await second.withAdminClient { client in
            let offset = UInt64(output.count)
            try await client.streamJobOutput(
                .with {
                    $0.id = id
                    $0.offset = offset
                }
            ) { response in
                for try await message in response.messages { output.append(message) }
            }
            let final = try await client.waitJob(.with { $0.id = id }).status
            #expect(final.state == .exited && final.exitCode == 5)
        }
        #expect(received.count == 2 * half)
        #expect(received.enumerated().allSatisfy { $0.element == UInt8($0.offset % 251) }, "every byte once, in order")
        #expect(second.stop() == 0)
    }

    /// The bytes a reader got, across its streams; each message must start where the last ended.
    final class ReceivedOutput: Sendable {
        private let data = Mutex(Data())
        var bytes: Data { data.withLock { $0 } }
        var count: Int { data.withLock { $0.count } }

        func append(_ message: Jobworker_V1_StreamJobOutputResponse) {
            let expected = data.withLock { data in
                defer { if message.offset == UInt64(data.count) { data += message.data } }
                return UInt64(data.count)
            }
            #expect(message.offset == expected, "a message at its offset: nothing lost, nothing twice")
        }
    }
}
