import ArgumentParser
import Foundation
import JobWorkerAPI

/// jobworkerd: serves the jobworker API over mutual TLS 1.3, and manages its certificates.
@main
struct JobWorkerDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobworkerd",
        abstract: "Run Linux jobs for authenticated clients over gRPC with mutual TLS 1.3.",
        subcommands: [Serve.self, Certs.self, Reload.self, ConfigCommand.self],
        defaultSubcommand: Serve.self)

    static func main() async {
        RuntimeTuning.apply()  // before any task starts
        var arguments = Array(CommandLine.arguments.dropFirst())
        var sources: [String: ServeSettings.Source] = [:]
        if let serveArguments = ServeSettings.serveArguments(of: arguments) {
            // serve, named or not: its settings from the environment and the file too.
            do {
                let resolved = try await ServeSettings.resolve(
                    serveArguments, environment: ProcessInfo.processInfo.environment)
                arguments = (arguments.first == "serve" ? ["serve"] : []) + resolved.arguments
                sources = resolved.sources
                ServeSettings.startupArguments.withLock { $0 = resolved.arguments }
            } catch {
                exit(withError: error)
            }
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard exitCode(for: error) != .success, sources.values.contains(where: { $0 != .flag }) else {
                exit(withError: error)
            }
            // A bad value from a variable or the file: named by its key and its source.
            let message = ServeSettings.attribute(fullMessage(for: error), to: sources)
            FileHandle.standardError.write(Data(("jobworkerd: " + message + "\n").utf8))
            Foundation.exit(exitCode(for: error).rawValue)
        }
    }
}
