import ArgumentParser
import Foundation
import JobWorkerAPI

/// Where the server is and who we are: flags first, then JOBCTL_* variables, then the
/// development PKI of `jobworkerd --dev` (so that the quick start needs no flags).
struct ConnectionOptions: ParsableArguments {
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
        let text = server ?? environment("JOBCTL_SERVER") ?? Self.defaultServer
        guard HostAndPort(text) != nil else {
            throw ValidationError("server \"\(text)\" is not HOST:PORT (e.g. 127.0.0.1:50051, [::1]:50051)")
        }
    }

    /// The connection these options describe; fails with a one-line message naming the file
    /// that cannot be read and where its path came from.
    func connection() throws -> Connection {
        let address = HostAndPort(server ?? environment("JOBCTL_SERVER") ?? Self.defaultServer)!
        let pki = environment("JOBCTL_DEV_PKI") ?? Self.defaultDevelopmentPKI
        let credentials = ClientCredentials(
            certificateChainPEM: try read(
                cert, variable: "JOBCTL_CERT", fallback: pki + "/admin.pem", what: "certificate"),
            privateKeyPEM: try read(key, variable: "JOBCTL_KEY", fallback: pki + "/admin-key.pem", what: "private key"),
            serverCAPEM: try read(ca, variable: "JOBCTL_CA", fallback: pki + "/ca.pem", what: "CA certificate"))
        return Connection(address: address, credentials: credentials)
    }

    private func read(_ flag: String?, variable: String, fallback: String, what: String) throws -> String {
        let path = flag ?? environment(variable) ?? fallback
        let origin =
            flag != nil
            ? ""
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
