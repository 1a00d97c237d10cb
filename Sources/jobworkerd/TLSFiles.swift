import Foundation
import JobWorkerAPI

/// Where the server's TLS material is read from, at startup and at each reload.
struct TLSFiles: Sendable {
    let certificateChain: String
    let privateKey: String
    let clientCA: String

    func load() throws -> ServerCredentials {
        let (chain, key, authority) = try read()
        return try ServerCredentials(certificateChainPEM: chain, privateKeyPEM: key, clientCAPEM: authority)
    }

    /// Reads the files again; the old material stays if any of them is missing or broken.
    func reload(into credentials: ServerCredentials) throws {
        let (chain, key, authority) = try read()
        try credentials.replace(certificateChainPEM: chain, privateKeyPEM: key, clientCAPEM: authority)
    }

    private func read() throws -> (String, String, String) {
        func contents(_ path: String) throws -> String {
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw CredentialsError(path: path, "cannot be read as text")
            }
        }
        return (try contents(certificateChain), try contents(privateKey), try contents(clientCA))
    }
}
