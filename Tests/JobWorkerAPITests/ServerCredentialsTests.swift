import Foundation
import JobWorkerAPI
import Testing

/// The server's TLS material as an operator hands it over: chains, key files with parameters,
/// and files that do not fit together.
@Suite("Server credentials")
struct ServerCredentialsTests {
    let authority: CertificateAuthority
    let server: IssuedCertificate

    init() throws {
        authority = try CertificateAuthority.create()
        server = try authority.issueServerCertificate(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
    }

    @Test("a chain file (leaf, then intermediates) and a key file with an EC PARAMETERS block are taken")
    func chainsAndKeyFiles() throws {
        let chain = try server.certificatePEM + "\n" + authority.root.certificatePEM
        let key =
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + server.privateKeyPEM
        let credentials = try ServerCredentials(
            certificateChainPEM: chain, privateKeyPEM: key, clientCAPEM: try authority.root.certificatePEM)
        #expect(credentials.notValidAfter > Date())
    }

    @Test("another certificate's key, an expired certificate, or no certificate at all are refused, saying which")
    func refusals() throws {
        let other = try authority.issueServerCertificate(dnsNames: ["other"], ipAddresses: [])
        let ca = try authority.root.certificatePEM
        #expect(throws: CredentialsError.self) {
            _ = try ServerCredentials(
                certificateChainPEM: try server.certificatePEM, privateKeyPEM: other.privateKeyPEM, clientCAPEM: ca)
        }
        let expired = try authority.issueServerCertificate(dnsNames: ["localhost"], ipAddresses: [], validity: -60)
        do {
            _ = try ServerCredentials(
                certificateChainPEM: try expired.certificatePEM, privateKeyPEM: expired.privateKeyPEM, clientCAPEM: ca)
            Issue.record("an expired certificate was taken")
        } catch let error as CredentialsError {
            #expect(error.description.contains("not valid now"), "\(error)")
        }
        #expect(throws: (any Error).self) {
            _ = try ServerCredentials(certificateChainPEM: "", privateKeyPEM: server.privateKeyPEM, clientCAPEM: ca)
        }
    }
}
