import Foundation
import Testing

/// jobctl's contexts against two live servers, each with a PKI of its own.
@Suite(
    "jobctl contexts", .serialized,
    .enabled(if: canUseCgroups, "runs jobworkerd as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(2)))
struct JobctlContextTests {
    @Test("context add, use, list, rm; --context, JOBCTL_CONTEXT, CONTEXT/ID; --all-contexts with one server down")
    func contexts() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("jobctl-\(UUID())/config.yaml").path
        defer { try? FileManager.default.removeItem(atPath: (config as NSString).deletingLastPathComponent) }
        let first = try RunningDaemon()
        let second = try RunningDaemon()
        // No JOBCTL_SERVER: only the contexts say where to go.
        func run(_ arguments: String..., context: String? = nil) throws -> JobctlResult {
            var environment = ["JOBCTL_CONFIG": config]
            environment["JOBCTL_CONTEXT"] = context
            return try jobctl(arguments, daemon: nil, environment: environment)
        }
        for (name, daemon) in [("east", first), ("west", second)] {
            let added = try run(
                "context", "add", name, "--server", daemon.address, "--cert", daemon.pki + "/admin.pem", "--key",
                daemon.pki + "/admin-key.pem", "--ca", daemon.pki + "/ca.pem")
            #expect(added.status == 0, "\(added)")
        }
        #expect(
            try run("context", "list").text
                == "  NAME   SERVER\n* east   \(first.address)\n  west   \(second.address)\n")
        #expect(try run("context", "use", "west").status == 0)
        #expect(try run("context", "list").text.contains("* west"))
        let onWest = try run("start", "--", "/bin/true").text.trimmingCharacters(in: .newlines)  // the context in use
        let onEast = try run("--context", "east", "start", "--", "/bin/true").text.trimmingCharacters(in: .newlines)
        #expect(try run("list").text.contains(onWest) && !(try run("list").text.contains(onEast)))
        #expect(try run("list", context: "east").text.contains(onEast), "JOBCTL_CONTEXT")
        #expect(try run("status", "east/\(onEast)").text.contains("ID:       \(onEast)"), "CONTEXT/ID")
        let found = try run("status", "--all-contexts", onWest)
        #expect(found.status == 0 && found.text.hasPrefix("Server:   west\n"), "\(found)")

        let both = try run("list", "--all-contexts")
        #expect(both.status == 0, "\(both)")
        let rows = both.text.split(separator: "\n")
        #expect(rows.first?.hasPrefix("SERVER   ID") == true, "\(both.text)")
        #expect(rows.contains { $0.hasPrefix("east ") && $0.contains(onEast) })
        #expect(rows.contains { $0.hasPrefix("west ") && $0.contains(onWest) })
        let json = try run("list", "--context", "east,west", "--json")
        let objects = try #require(try JSONSerialization.jsonObject(with: json.output) as? [[String: Any]])
        #expect(Set(objects.compactMap { $0["server"] as? String }) == ["east", "west"])

        // A server that does not answer is reported, and the other still lists.
        second.stop()  // its files stay: only the server is gone
        let partial = try run("list", "--all-contexts")
        #expect(partial.status == 1, "\(partial)")
        #expect(partial.error.contains("jobctl: west: cannot connect"), "\(partial.error)")
        #expect(partial.text.contains(onEast) && !partial.text.contains(onWest))

        #expect(try run("context", "rm", "west").status == 0)
        let gone = try run("list", "--context", "west")
        #expect(gone.status == 1 && gone.error.contains("no context west"), "\(gone)")
        let mode = try FileManager.default.attributesOfItem(atPath: config)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}
