import ArgumentParser
import Foundation
import JobWorkerAPI

/// Where the server is and who we are: flags first, then a context named with `--context` (or
/// `JOBCTL_CONTEXT`), then JOBCTL_* variables, then the context in use (`jobctl context use`),
/// then the development PKI of `jobworkerd --dev` (so that the quick start needs no flags).
struct ConnectionOptions: ParsableArguments {
    @Option(
        help:
            "A context of `jobctl context list` (env JOBCTL_CONTEXT); list, status and watch take several, comma-separated."
    )
    var context: String?

    @Flag(help: "list, status and watch: ask every context's server.")
    var allContexts = false

    @Option(help: "The server, HOST:PORT (env JOBCTL_SERVER; default 127.0.0.1:50051).")
    var server: String?

    @Option(help: "Your client certificate, PEM (env JOBCTL_CERT; default: the dev PKI's admin.pem).")
    var cert: String?

    @Option(help: "Your private key, PEM (env JOBCTL_KEY; default: the dev PKI's admin-key.pem).")
    var key: String?

    @Option(help: "The CA that signed the server's certificate, PEM (env JOBCTL_CA; default: the dev PKI's ca.pem).")
    var ca: String?

    static let defaultServer = "127.0.0.1:50051"
    static let defaultDevelopmentPKI = "/var/lib/jobworker/dev-pki"

    func validate() throws {
        if let server {
            guard HostAndPort(server) != nil else {
                throw ValidationError("server \"\(server)\" is not HOST:PORT (e.g. 127.0.0.1:50051, [::1]:50051)")
            }
        }
        if allContexts && context != nil { throw ValidationError("give --context or --all-contexts, not both") }
    }

    /// The contexts named by `--context a,b`, `--all-contexts` or `JOBCTL_CONTEXT`; empty when none is.
    func namedContexts() throws -> [JobctlConfig.Context] {
        let config = try JobctlConfig.load()
        if allContexts {
            guard !config.contexts.isEmpty else {
                throw CommandFailure("no contexts in \(JobctlConfig.path): jobctl context add makes one")
            }
            return config.contexts
        }
        guard let names = context ?? environment("JOBCTL_CONTEXT") else { return [] }
        return try names.split(separator: ",").map { try config.context(named: String($0)) }
    }

    /// The connection these options describe, to one server; fails with a one-line message
    /// naming the file that cannot be read and where its path came from.
    func connection() throws -> Connection {
        let named = try namedContexts()
        guard named.count <= 1 else {
            throw CommandFailure("this command talks to one server: give one --context, or CONTEXT/ID")
        }
        return try connection(to: named.first)
    }

    /// The connection to `context`'s server (flags still win); nil: as `connection()` without one.
    func connection(to context: JobctlConfig.Context?) throws -> Connection {
        // The context in use applies only when nothing else says where to go: no flag, no
        // JOBCTL_* variable (mixing a variable's server with a context's key would be a trap).
        let variables = ["JOBCTL_SERVER", "JOBCTL_CERT", "JOBCTL_KEY", "JOBCTL_CA"]
        var context = context
        if context == nil, server == nil, variables.allSatisfy({ environment($0) == nil }) {
            let config = try JobctlConfig.load()
            context = try config.currentContext.map { try config.context(named: $0) }
        }
        let origin = context.map { " (context \($0.name))" }
        let text = server ?? context?.server ?? environment("JOBCTL_SERVER") ?? Self.defaultServer
        guard let address = HostAndPort(text) else {
            throw CommandFailure("server \"\(text)\"\(origin ?? "") is not HOST:PORT")
        }
        let pki = environment("JOBCTL_DEV_PKI") ?? Self.defaultDevelopmentPKI
        let credentials = ClientCredentials(
            certificateChainPEM: try read(
                cert ?? context?.cert, origin: origin, variable: "JOBCTL_CERT", fallback: pki + "/admin.pem",
                what: "certificate"),
            privateKeyPEM: try read(
                key ?? context?.key, origin: origin, variable: "JOBCTL_KEY", fallback: pki + "/admin-key.pem",
                what: "private key"),
            serverCAPEM: try read(
                ca ?? context?.ca, origin: origin, variable: "JOBCTL_CA", fallback: pki + "/ca.pem",
                what: "CA certificate"))
        return Connection(address: address, credentials: credentials, name: context?.name)
    }

    /// The servers of `list`, `status` and `watch`: each named context's, or the one server. A
    /// context whose credentials cannot be read is said on stderr and left out (the others are
    /// still asked); `failed` tells whether one was.
    func connections() throws -> (servers: [Connection], failed: Bool) {
        let named = try namedContexts()
        guard !named.isEmpty else { return ([try connection(to: nil)], false) }
        var servers: [Connection] = []
        for context in named {
            do {
                servers.append(try connection(to: context))
            } catch {
                Terminal.writeError("jobctl: \(context.name): \(CommandFailure(error).message)\n")
            }
        }
        guard !servers.isEmpty else { throw CommandFailure("no context could be used") }
        return (servers, servers.count < named.count)
    }

    /// A job named `CONTEXT/ID` (or just `ID`): its server's connection and its id.
    func connection(forJob reference: String) throws -> (Connection, String) {
        guard let slash = reference.firstIndex(of: "/") else { return (try connection(), reference) }
        let config = try JobctlConfig.load()
        let context = try config.context(named: String(reference[..<slash]))
        return (try connection(to: context), String(reference[reference.index(after: slash)...]))
    }

    private func read(_ flag: String?, origin context: String?, variable: String, fallback: String, what: String)
        throws -> String
    {
        let path = flag ?? environment(variable) ?? fallback
        let origin =
            flag != nil
            ? context ?? ""
            : environment(variable) != nil
                ? " (from \(variable))"
                : " (the development PKI's; start jobworkerd --dev, or give --cert, --key and --ca)"
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch let error as CocoaError {
            let reason = (error.underlying as? POSIXError).map { String(cString: strerror($0.code.rawValue)) }
            throw CommandFailure("cannot read \(what) \(path)\(origin): \(reason ?? "unreadable")")
        }
    }

    private func environment(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }
}

extension CocoaError {
    fileprivate var underlying: (any Error)? { userInfo[NSUnderlyingErrorKey] as? any Error }
}
