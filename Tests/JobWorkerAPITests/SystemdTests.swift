import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The systemd unit, and sd_notify as systemd would receive it: a datagram socket of the test's
/// own named by `NOTIFY_SOCKET`.
@Suite(
    "systemd", .serialized,
    .enabled(if: canUseCgroups, "runs jobworkerd as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(2)))
struct SystemdTests {
    static let unit = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("packaging/jobworkerd.service")

    @Test("systemd-analyze verify accepts packaging/jobworkerd.service without a warning")
    func unitVerifies() throws {
        let analyzer = "/usr/bin/systemd-analyze"
        try requireInstalled(
            FileManager.default.isExecutableFile(atPath: analyzer), "systemd-analyze (Debian's systemd package)")
        // verify checks that ExecStart's program exists: the unit as installed, pointing at this build.
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        #expect(text.contains("ExecStart=/usr/local/bin/jobworkerd serve"))
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("jobworkerd-\(UUID()).service")
        defer { try? FileManager.default.removeItem(at: copy) }
        try text.replacingOccurrences(of: "/usr/local/bin/jobworkerd", with: daemonPath)
            .write(to: copy, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: analyzer)
        process.arguments = ["verify", copy.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && said.isEmpty, "\(said)")
        for setting in ["Type=notify", "Delegate=yes", "KillMode=process", "Restart=on-failure", "WatchdogSec="] {
            #expect(text.contains(setting), "\(setting)")
        }
    }

    @Test(
        "READY=1 comes after the jobs of the previous run are adopted; STATUS counts jobs; STOPPING=1 at SIGTERM; the watchdog is fed"
    )
    func notifications() throws {
        let socket = try NotifySocket()
        let first = try RunningDaemon(leavingJobsRunning: true, environment: ["NOTIFY_SOCKET": socket.path])
        #expect(try socket.next(containing: "READY=1").contains("STATUS=serving; 0 jobs running"))
        let job = try jobctl("start", "--", helperPath, "sleep", daemon: first).text.trimmingCharacters(in: .newlines)
        #expect(try socket.next(containing: "STATUS=").contains("serving; 1 job running"))
        kill(first.process.processIdentifier, SIGTERM)
        _ = try socket.next(containing: "STOPPING=1")
        #expect(first.stop() == 0)

        let second = try RunningDaemon(
            restarting: first, environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "200000"])
        // The count in READY's own status line is of jobs adopted before it was sent.
        let ready = try socket.next(containing: "READY=1")
        #expect(ready.contains("STATUS=serving; 1 job running"), "\(ready)")
        let adopted = try jobctl("status", "--json", job, daemon: second)
        #expect(
            (try JSONSerialization.jsonObject(with: adopted.output) as? [String: Any])?["state"] as? String == "running"
        )
        for _ in 0..<2 { _ = try socket.next(containing: "WATCHDOG=1") }
        #expect(second.stop() == 0)
    }
}

/// A unix datagram socket bound at a path of its own, read one datagram at a time.
final class NotifySocket {
    let path = "/tmp/jwd-notify-\(UUID().uuidString.prefix(8)).sock"
    private let descriptor: Int32

    init() throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try #require(descriptor >= 0 && bound == 0, "cannot bind \(path)")
        // A bound on a missing message, so that the test fails rather than hangs.
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The next datagram that contains `text` (the ones before it are skipped).
    func next(containing text: String) throws -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            try #require(count >= 0, "no datagram with \(text) within 30 s")
            let message = String(decoding: buffer[..<count], as: UTF8.self)
            if message.contains(text) { return message }
        }
    }

    /// Whether a datagram has arrived and is waiting to be read (none is waited for).
    var hasWaitingDatagram: Bool {
        var byte: UInt8 = 0
        return recv(descriptor, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) >= 0
    }

    deinit {
        close(descriptor)
        unlink(path)
    }
}
