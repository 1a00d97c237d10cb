import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `jobworkerd reload`: asks the server of a state directory to read its TLS certificate, key and
/// client CA, and its configuration file, again (SIGHUP), as `systemctl reload` does. The server
/// logs whether it took them.
struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Make the running server read its TLS certificate, key and client CA and its configuration file again (SIGHUP): new limits, ceilings and quotas apply to new starts."
    )

    @Option(help: "The state directory of the server to reload.")
    var stateDir = "/var/lib/jobworker"

    func run() throws {
        let pidFile = stateDir + "/jobworkerd.pid"
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else {
            throw ValidationError("no server runs on \(stateDir): \(pidFile) is missing or unreadable")
        }
        // A stale file may name another process by now: signal only a jobworkerd.
        let command = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard command == "jobworkerd" else {
            throw ValidationError("no server runs on \(stateDir): process \(pid) of \(pidFile) is not jobworkerd")
        }
        guard kill(pid, SIGHUP) == 0 else {
            throw ValidationError("cannot signal jobworkerd (pid \(pid)): \(String(cString: strerror(errno)))")
        }
        print("asked jobworkerd (pid \(pid)) to reload; its log says whether it did")
    }
}
