import ArgumentParser
import Foundation
import Yams

/// jobctl's contexts, as kubectl keeps them: named servers with the credentials for each, and the
/// one in use. Kept in `$JOBCTL_CONFIG`, else `$XDG_CONFIG_HOME/jobctl/config.yaml`, else
/// `~/.config/jobctl/config.yaml`; written whole (a new file renamed over the old), mode 0600.
struct JobctlConfig: Codable, Equatable {
    struct Context: Codable, Equatable {
        var name: String
        var server: String
        var cert: String
        var key: String
        var ca: String
    }

    var currentContext: String?
    var contexts: [Context] = []

    enum CodingKeys: String, CodingKey {
        case currentContext = "current-context"
        case contexts
    }

    static var path: String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["JOBCTL_CONFIG"], !path.isEmpty { return path }
        let base =
            environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".config").path
        return base + "/jobctl/config.yaml"
    }

    /// The file's contexts; none when there is no file.
    static func load() throws -> JobctlConfig {
        let path = path
        guard let data = FileManager.default.contents(atPath: path) else { return JobctlConfig() }
        do {
            return try YAMLDecoder().decode(JobctlConfig.self, from: String(decoding: data, as: UTF8.self))
        } catch {
            throw CommandFailure("cannot read the contexts in \(path): \(error)")
        }
    }

    func save() throws {
        let path = Self.path
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let text = try YAMLEncoder().encode(self)
        let temporary = path + ".new-\(getpid())"
        guard
            FileManager.default.createFile(
                atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        else { throw CommandFailure("cannot write \(temporary)") }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CommandFailure("cannot replace \(path): \(String(cString: strerror(errno)))")
        }
    }

    func context(named name: String) throws -> Context {
        guard let context = contexts.first(where: { $0.name == name }) else {
            let known = contexts.map(\.name).joined(separator: ", ")
            throw CommandFailure(
                "no context \(name) in \(Self.path)"
                    + (known.isEmpty ? " (jobctl context add makes one)" : " (known: \(known))"))
        }
        return context
    }
}
