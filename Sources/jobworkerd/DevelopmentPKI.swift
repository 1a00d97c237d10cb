import Foundation
import JobWorkerAPI

/// `--dev`: a CA, a server certificate for localhost/127.0.0.1/::1 and client certificates for
/// an admin, a user and a viewer, created once under the state directory and reused.
struct DevelopmentPKI {
    let directory: String

    var authority: String { directory + "/ca.pem" }
    var serverCertificate: String { directory + "/server.pem" }
    var serverKey: String { directory + "/server-key.pem" }

    static let clients = [("admin", "admin"), ("alice", "user"), ("viewer", "viewer")]

    static func ensure(in directory: String) throws -> DevelopmentPKI {
        let pki = DevelopmentPKI(directory: directory)
        guard !FileManager.default.fileExists(atPath: pki.authority) else { return pki }
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let authority = try CertificateAuthority.create(commonName: "jobworker development CA")
        try authority.issueServerCertificate(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"])
            .write(to: directory, name: "server")
        for (name, role) in clients {
            try authority.issueClientCertificate(name: name, role: role).write(to: directory, name: name)
        }
        // The CA last: its presence means the set is complete.
        try authority.root.write(to: directory, name: "ca")
        return pki
    }

    /// Where the client files are, and the jobctl command to try: with no flags when jobctl's
    /// defaults (127.0.0.1:50051, /var/lib/jobworker/dev-pki) find this server.
    func printInstructions(address: HostAndPort) {
        print("development PKI in \(directory): ca.pem; clients admin, alice (user), viewer (NAME.pem, NAME-key.pem)")
        let defaults = address == HostAndPort("127.0.0.1:50051") && directory == "/var/lib/jobworker/dev-pki"
        let flags =
            defaults
            ? ""
            : " --server \(address) --ca \(authority) --cert \(directory)/admin.pem --key \(directory)/admin-key.pem"
        print("try: jobctl run\(flags) -- echo hello")
    }
}
