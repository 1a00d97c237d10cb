import Foundation
import Testing

@testable import JobWorker

/// What another process sees of a lock this one holds: the test helper's `try-lock` of `path`.
func lockAttempt(on path: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: helperPath)
    process.arguments = ["try-lock", path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .newlines)
}

@Suite("Exclusive locks", .timeLimit(.minutes(1)))
struct LockTests {
    @Test("a second worker on a state directory, in this process or another, is refused, and the first keeps it")
    func stateDirectoryLock() async throws {
        try await withWorker { (first: Worker) async throws in
            let lockFile = first.configuration.stateDirectory + "/lock"
            #expect(try lockAttempt(on: lockFile) == "Resource temporarily unavailable")
            await #expect {
                _ = try await Worker(configuration: first.configuration)
            } throws: { error in
                (error as? JobWorkerError)?.message.contains("is in use by another worker") == true
            }
            // The refusal must not have dropped the first worker's lock (closing any descriptor of
            // the file would have).
            #expect(try lockAttempt(on: lockFile) == "Resource temporarily unavailable")
            await first.shutdown()
            #expect(!FileManager.default.fileExists(atPath: lockFile))  // let go, and removed
        }
    }
}
