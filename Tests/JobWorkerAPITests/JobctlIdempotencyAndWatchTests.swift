import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension JobctlTests {
    @Test("start and run --client-token start a job once, also across a restart; another command with it fails")
    func clientToken() throws {
        let token = "deploy-\(UUID())"
        let first = try jobctl("start", "--client-token", token, "--", helperPath, "exit", "3", daemon: daemon)
        #expect(first.status == 0, "\(first)")
        let id = first.text.trimmingCharacters(in: .newlines)
        let again = try jobctl("start", "--client-token", token, "--", helperPath, "exit", "3", daemon: daemon)
        #expect(again.text.trimmingCharacters(in: .newlines) == id)
        // run with the token follows the job it names: its output and its exit code.
        let run = try jobctl("run", "--client-token", token, "--", helperPath, "exit", "3", daemon: daemon)
        #expect(run.status == 3, "\(run)")

        daemon.stop()
        let restarted = try RunningDaemon(restarting: daemon)
        let afterRestart = try jobctl(
            "start", "--client-token", token, "--", helperPath, "exit", "3", daemon: restarted)
        #expect(afterRestart.text.trimmingCharacters(in: .newlines) == id, "\(afterRestart)")
        let different = try jobctl(
            "start", "--client-token", token, "--", helperPath, "exit", "4", daemon: restarted)
        #expect(different.status == 1, "\(different)")
        #expect(different.error.contains("different request"), "\(different)")
        let listed = try jobctl("list", daemon: restarted).text.split(separator: "\n").dropFirst()
        #expect(listed.map { String($0.prefix(36)) } == [id])
    }

    @Test("watch prints the jobs, then each start and end as it happens; --json prints one status a line")
    func watch() throws {
        let tag = "w\(UUID().uuidString.prefix(8).lowercased())"
        let sleeper = try jobctl("start", "-l", "run=\(tag)", "--", helperPath, "sleep", daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        let json = try WatchProcess(["watch", "--json", "-l", "run=\(tag)"], daemon: daemon)
        let table = try WatchProcess(["watch", "-l", "run=\(tag)"], daemon: daemon)
        // The first line of each is the running sleeper: the watch is in place.
        let snapshot = try json.nextLine()
        #expect(try JSONSerialization.jsonObject(with: Data(snapshot.utf8)) as? [String: Any] != nil, "\(snapshot)")
        #expect(snapshot.contains(sleeper) && snapshot.contains("\"state\":\"running\""), "\(snapshot)")
        #expect(try table.nextLine().hasPrefix("ID "))
        #expect(try table.nextLine().hasPrefix(sleeper))

        let job = try jobctl("start", "-l", "run=\(tag)", "--", helperPath, "exit", "7", daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        let unlabelled = try jobctl("start", "--", "/bin/true", daemon: daemon).text.trimmingCharacters(in: .newlines)
        let started = try json.nextLine()
        #expect(started.contains(job) && started.contains("\"state\":\"running\""), "\(started)")
        let ended = try json.nextLine()
        #expect(ended.contains(job) && ended.contains("\"state\":\"exited\"") && ended.contains("\"exit_code\":7"))
        let startRow = try table.nextLine()
        #expect(startRow.hasPrefix(job) && startRow.contains("running"), "\(startRow)")
        let endRow = try table.nextLine()
        #expect(endRow.hasPrefix(job) && endRow.contains("exited (code 7)"), "\(endRow)")
        _ = try jobctl("stop", "--grace", "0", sleeper, daemon: daemon)
        let stopped = try json.nextLine()
        #expect(stopped.contains(sleeper) && stopped.contains("\"state\":\"stopped\""), "\(stopped)")
        #expect(!json.received.contains(unlabelled) && !table.received.contains(unlabelled), "filtered out")
        #expect(try jobctl("watch", "--state", "sleeping", daemon: daemon).status == 2)
    }
}

extension JobctlTests {
    @Test("run -i feeds jobctl's own stdin to the job, byte for byte; list --owner filters by owner")
    func interactiveStdinAndOwner() throws {
        let process = jobctlProcess(["run", "-i", "--", "/bin/cat"], daemon: daemon)
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let bytes = Data([0, 1, 2, 0xff, 0xfe, 10, 13]) + Data("tail\n".utf8)
        input.fileHandleForWriting.write(bytes)
        try input.fileHandleForWriting.close()
        let echoed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(echoed == bytes)

        // The development PKI's admin owns every job started here.
        let all = try jobctl("list", daemon: daemon).text.split(separator: "\n").dropFirst()
        let admins = try jobctl("list", "--owner", "admin", daemon: daemon).text.split(separator: "\n").dropFirst()
        #expect(!all.isEmpty && admins.count == all.count)
        let nobody = try jobctl("list", "--owner", "nobody-\(UUID())", daemon: daemon)
        #expect(nobody.status == 0 && nobody.text.split(separator: "\n").count == 1, "\(nobody)")  // the header
    }
}

/// A `jobctl watch` running in the background, read a line at a time; interrupted at the end.
final class WatchProcess {
    let process: Process
    private let output = Pipe()
    private(set) var received = ""
    private var consumed = 0

    init(_ arguments: [String], daemon: RunningDaemon) throws {
        process = jobctlProcess(arguments, daemon: daemon)
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// The next line it prints (waits for it); fails if it exits first.
    func nextLine() throws -> String {
        while true {
            let unread = received.utf8.dropFirst(consumed)
            if let newline = unread.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: unread[..<newline], as: UTF8.self)
                consumed += line.utf8.count + 1
                return line
            }
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { throw WatchEnded(output: received) }
            received += String(decoding: data, as: UTF8.self)
        }
    }

    struct WatchEnded: Error { let output: String }

    deinit {
        process.interrupt()
        process.waitUntilExit()
    }
}
