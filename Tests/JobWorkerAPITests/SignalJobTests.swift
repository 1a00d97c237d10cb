import Foundation
import GRPCCore
import GRPCInProcessTransport
import JobWorker
import JobWorkerAPI
import JobWorkerTestPrograms
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// SignalJob: one signal to a running job.
@Suite("Signalling a job", .timeLimit(.minutes(1)))
struct SignalJobTests {
    @Test("USR1 reaches the job's handler; STOP and CONT are delivered; an ended job is FAILED_PRECONDITION")
    func signals() async throws {
        try await withAPI { client in
            let job = try await client.startHelper("name-signal", as: .alice)
            try await client.waitForOutput(of: job.id, containing: "ready", as: .alice)
            for signal in [SIGSTOP, SIGCONT] {
                _ = try await client.signalJob(
                    .with {
                        $0.id = job.id
                        $0.signal = signal
                    }, metadata: Caller.alice.metadata)
            }
            let signalled = try await client.signalJob(
                .with {
                    $0.id = job.id
                    $0.signal = SIGUSR1
                }, metadata: Caller.alice.metadata
            ).status
            #expect(signalled.id == job.id)
            let final = try await client.waitJob(.with { $0.id = job.id }, metadata: Caller.alice.metadata).status
            #expect(final.state == .exited && final.exitCode == 0)
            let output = try await client.output(of: job.id, as: .alice).reduce(Data()) { $0 + $1.data }
            #expect(String(decoding: output, as: UTF8.self) == "ready\ngot signal \(SIGUSR1)\n")
            for (signal, expected) in [
                (SIGUSR1, RPCError.Code.failedPrecondition), (SIGSEGV, .invalidArgument), (0, .invalidArgument),
            ] {
                let code = await statusCode {
                    _ = try await client.signalJob(
                        .with {
                            $0.id = job.id
                            $0.signal = signal
                        }, metadata: Caller.alice.metadata)
                }
                #expect(code == expected, "\(signal)")
            }
        }
    }
}
