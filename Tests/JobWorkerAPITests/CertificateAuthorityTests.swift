import Foundation
import JobWorkerAPI
import SwiftASN1
import Testing
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// The leaf must allow `usage` (as BoringSSL requires of TLS peers); X509's verifier has no such
/// policy of its own.
struct ExtendedKeyUsagePolicy: VerifierPolicy {
    let usage: ExtendedKeyUsage.Usage
    init(_ usage: ExtendedKeyUsage.Usage) { self.usage = usage }

    var verifyingCriticalExtensions: [ASN1ObjectIdentifier] { [] }

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        guard let usages = try? chain.leaf.extensions.extendedKeyUsage, usages.contains(usage) else {
            return .failsToMeetPolicy(reason: "the leaf does not allow \(usage)")
        }
        return .meetsPolicy
    }
}

@Suite("Certificate authority and identities")
struct CertificateAuthorityTests {
    /// Validates `leaf` against `authority` as a TLS peer would, for `usage`, now.
    func validate(_ leaf: Certificate, by authority: CertificateAuthority, usage: ExtendedKeyUsage.Usage) async -> Bool
    {
        var verifier = Verifier(rootCertificates: CertificateStore([authority.root.certificate])) {
            RFC5280Policy()
            ExtendedKeyUsagePolicy(usage)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
        if case .validCertificate = result { return true }
        return false
    }

    @Test("a client certificate carries its identity (CN) and role (OU), and validates for clientAuth only")
    func clientCertificate() async throws {
        let authority = try CertificateAuthority.create()
        let alice = try authority.issueClientCertificate(name: "alice", role: "user")
        #expect(try Identity.validated(from: alice.certificate).get() == Identity(name: "alice", role: .user))
        #expect(await validate(alice.certificate, by: authority, usage: .clientAuth))
        #expect(!(await validate(alice.certificate, by: authority, usage: .serverAuth)))
        let other = try CertificateAuthority.create(commonName: "someone else's CA")
        #expect(!(await validate(alice.certificate, by: other, usage: .clientAuth)))
    }

    @Test("the identity is the CN's own string (not its RFC 4514 form); a name not in Unicode NFC is refused")
    func identityStrings() throws {
        let authority = try CertificateAuthority.create()
        let comma = try authority.issueClientCertificate(
            subject: try DistinguishedName {
                OrganizationalUnitName("user")
                CommonName("smith, jane")
            })
        #expect(try Identity.validated(from: comma.certificate).get().name == "smith, jane")
        let decomposed = try authority.issueClientCertificate(
            subject: try DistinguishedName {
                OrganizationalUnitName("user")
                CommonName("jose\u{0301}")  // "josé" with a combining accent
            })
        guard case .failure(let refusal) = Identity.validated(from: decomposed.certificate) else {
            Issue.record("a decomposed name was accepted")
            return
        }
        #expect(refusal.reason.contains("normalization form C"))
    }

    @Test("an OU that names no known role gives an identity without a role")
    func unknownRole() throws {
        let authority = try CertificateAuthority.create()
        let certificate = try authority.issueClientCertificate(name: "sam", role: "operator").certificate
        #expect(try Identity.validated(from: certificate).get() == Identity(name: "sam", role: nil))
        for role in Role.allCases {
            let issued = try authority.issueClientCertificate(name: "n", role: role.rawValue).certificate
            #expect(try Identity.validated(from: issued).get().role == role)
        }
    }

    @Test("an expired client certificate does not validate")
    func expired() async throws {
        let authority = try CertificateAuthority.create()
        let old = try authority.issueClientCertificate(
            name: "alice", role: "user", notValidBefore: Date() - 3 * 86_400, validity: 86_400)
        #expect(!(await validate(old.certificate, by: authority, usage: .clientAuth)))
    }

    @Test("the server certificate names its host names and addresses and validates for serverAuth")
    func serverCertificate() async throws {
        let authority = try CertificateAuthority.create()
        let server = try authority.issueServerCertificate(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"])
        let names = try #require(try server.certificate.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("localhost")))
        #expect(names.contains(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))))
        #expect(
            names.contains(.ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))))
        #expect(await validate(server.certificate, by: authority, usage: .serverAuth))
        #expect(throws: CertificateError.invalidAddress("not-an-ip")) {
            try authority.issueServerCertificate(dnsNames: [], ipAddresses: ["not-an-ip"])
        }
    }

    @Test("written keys are mode 0600, never overwritten, and the CA loads back from its PEM files")
    func files() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pki-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try CertificateAuthority.create()
        try authority.root.write(to: directory, name: "ca")
        var info = stat()
        #expect(stat(directory + "/ca-key.pem", &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(stat(directory + "/ca.pem", &info) == 0 && info.st_mode & 0o777 == 0o644)
        #expect(throws: (any Error).self) { try authority.root.write(to: directory, name: "ca") }

        let loaded = try CertificateAuthority(
            certificatePEM: try String(contentsOfFile: directory + "/ca.pem", encoding: .utf8),
            privateKeyPEM: try String(contentsOfFile: directory + "/ca-key.pem", encoding: .utf8))
        #expect(loaded.root.certificate == authority.root.certificate)
        let issued = try loaded.issueClientCertificate(name: "bob", role: "viewer")
        #expect(issued.certificate.issuer == authority.root.certificate.subject)
    }
}
