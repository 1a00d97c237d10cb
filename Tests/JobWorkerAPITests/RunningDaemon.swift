import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A jobworkerd process serving with a development PKI from a temporary state directory, on a
/// loopback port the kernel picked; SIGTERM and the directory's removal when it goes away.
final class RunningDaemon {
    let process = Process()
    let state: String
    /// The cgroup under which its jobs run: one per daemon, as a daemon removes what it finds
    /// there at startup (a restarted one is given its predecessor's).
    let cgroupParent: String
    let port: Int
    private let ownsState: Bool

    var pki: String { state + "/dev-pki" }
    var address: String { "127.0.0.1:\(port)" }

    /// Starts `jobworkerd --dev` with `arguments` added, and waits for the line that says where
    /// it listens (the read returns at EOF if the daemon died first).
    ///
    /// `restarting` a daemon uses its state directory and cgroup parent (and leaves the directory
    /// to it).
    init(_ arguments: [String] = [], restarting previous: RunningDaemon? = nil) throws {
        state = previous?.state ?? FileManager.default.temporaryDirectory.appendingPathComponent("jwd-\(UUID())").path
        cgroupParent = previous?.cgroupParent ?? "jobworker-daemon-test-\(UUID().uuidString.prefix(8))"
        ownsState = previous == nil
        process.executableURL = URL(fileURLWithPath: daemonPath)
        process.arguments =
            ["--dev", "--state-dir", state, "--listen", "127.0.0.1:0", "--cgroup-parent", cgroupParent] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        var port: Int?
        while port == nil {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("jobworkerd listening on ") }) {
                port = line.split(separator: ":").last.flatMap { Int($0) }
            }
        }
        guard let port else {
            process.terminate()
            throw DaemonDidNotStart(output: text)
        }
        self.port = port
    }

    /// SIGTERM, and the exit status once it has exited.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGKILL: the daemon ends without a word, as in a crash.
    func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        stop()
        if ownsState { try? FileManager.default.removeItem(atPath: state) }
    }
}

struct DaemonDidNotStart: Error, CustomStringConvertible {
    let output: String
    var description: String { "jobworkerd did not start: \(output)" }
}
