import ArgumentParser

/// jobworkerd: serves the jobworker API over mutual TLS 1.3, and manages its certificates.
@main
struct JobWorkerDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobworkerd",
        abstract: "Run Linux jobs for authenticated clients over gRPC with mutual TLS 1.3.",
        subcommands: [Serve.self, Certs.self],
        defaultSubcommand: Serve.self)
}
