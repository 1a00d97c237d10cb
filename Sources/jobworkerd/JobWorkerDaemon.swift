import ArgumentParser
import JobWorkerAPI

/// jobworkerd: serves the jobworker API over mutual TLS 1.3, and manages its certificates.
@main
struct JobWorkerDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobworkerd",
        abstract: "Run Linux jobs for authenticated clients over gRPC with mutual TLS 1.3.",
        subcommands: [Serve.self, Certs.self, Reload.self],
        defaultSubcommand: Serve.self)

    static func main() async {
        RuntimeTuning.apply()  // before any task starts
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
