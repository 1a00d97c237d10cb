import ArgumentParser
import Foundation
import JobWorkerAPI

/// `jobworkerd certs`: the PKI for real use — a CA, the server's certificate, client certificates.
struct Certs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a certificate authority and issue certificates (no openssl needed).",
        subcommands: [Initialize.self, Issue.self])

    struct Initialize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a CA (ca.pem, ca-key.pem) and a server certificate (server.pem, server-key.pem).")

        @Option(help: "Directory for the files; created if missing. Keys are written with mode 0600.")
        var dir: String

        @Option(name: .customLong("dns-name"), help: "A host name the server answers to (repeatable).")
        var dnsNames: [String] = ["localhost"]

        @Option(name: .customLong("ip"), help: "An address the server answers on (repeatable).")
        var addresses: [String] = ["127.0.0.1", "::1"]

        func run() async throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let authority = try CertificateAuthority.create()
            try authority.root.write(to: dir, name: "ca")
            try authority.issueServerCertificate(dnsNames: dnsNames, ipAddresses: addresses).write(
                to: dir, name: "server")
            print("created \(dir)/ca.pem, \(dir)/ca-key.pem, \(dir)/server.pem, \(dir)/server-key.pem")
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a client certificate NAME.pem / NAME-key.pem, signed by the CA in --dir.")

        @Option(help: "Directory holding ca.pem and ca-key.pem; the new files go there too.")
        var dir: String

        @Option(help: "The client's identity (certificate CN); its jobs are owned by this name.")
        var name: String

        @Option(help: "The client's role (certificate OU): admin, user or viewer.")
        var role: String

        func validate() throws {
            guard Role(rawValue: role) != nil else {
                throw ValidationError("role must be admin, user or viewer, not \"\(role)\"")
            }
            // Printable ASCII only, and a file name: the name becomes the identity every log
            // line, audit record and terminal shows, and NAME.pem.
            guard !name.isEmpty, name.utf8.count <= 64, !name.hasPrefix("."),
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@".contains($0)) })
            else {
                throw ValidationError(
                    "name may hold ASCII letters, digits and - _ . @ only, up to 64 of them, and may not start with a dot"
                )
            }
        }

        func run() async throws {
            let authority = try CertificateAuthority(
                certificatePEM: try String(contentsOfFile: dir + "/ca.pem", encoding: .utf8),
                privateKeyPEM: try String(contentsOfFile: dir + "/ca-key.pem", encoding: .utf8))
            try authority.issueClientCertificate(name: name, role: role).write(to: dir, name: name)
            print("created \(dir)/\(name).pem, \(dir)/\(name)-key.pem (role \(role))")
        }
    }
}
