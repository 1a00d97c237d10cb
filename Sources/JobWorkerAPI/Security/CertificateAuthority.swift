import Crypto
import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// A certificate and its private key, in PEM, as the server and clients load them.
public struct IssuedCertificate: Sendable {
    public let certificate: Certificate
    public let privateKey: Certificate.PrivateKey
    public let privateKeyPEM: String

    init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.privateKey = Certificate.PrivateKey(privateKey)
        self.privateKeyPEM = privateKey.pemRepresentation
    }

    public var certificatePEM: String {
        get throws { try certificate.serializeAsPEM().pemString }
    }

    /// Writes `<name>.pem` (0644) and `<name>-key.pem` (0600, created so: never readable by others
    /// even for an instant) into `directory`.
    public func write(to directory: String, name: String) throws {
        try writeFile(directory + "/\(name).pem", contents: certificatePEM, mode: 0o644)
        try writeFile(directory + "/\(name)-key.pem", contents: privateKeyPEM, mode: 0o600)
    }
}

/// A small certificate authority for jobworker: ECDSA P-256 keys, a CA certificate with critical
/// BasicConstraints and KeyUsage, a server certificate (EKU serverAuth, SANs for its names) and
/// client certificates (EKU clientAuth) whose Subject CN is the caller's identity and whose
/// Subject OU its role. Written with swift-certificates and swift-crypto; no openssl.
public struct CertificateAuthority: Sendable {
    public let root: IssuedCertificate

    /// A new CA, valid from a minute ago (clock skew) for `validity`.
    public static func create(
        commonName: String = "jobworker CA", validity: TimeInterval = 10 * 365 * 86_400
    ) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now - 60, notValidAfter: now + validity, issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key))
        return CertificateAuthority(root: IssuedCertificate(certificate: certificate, privateKey: key))
    }

    /// The CA stored by `IssuedCertificate.write`.
    public init(certificatePEM: String, privateKeyPEM: String) throws {
        root = IssuedCertificate(
            certificate: try Certificate(pemEncoded: certificatePEM),
            privateKey: try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM))
    }

    init(root: IssuedCertificate) {
        self.root = root
    }

    /// A server certificate for `dnsNames` and `ipAddresses` (e.g. "127.0.0.1", "::1").
    public func issueServerCertificate(
        commonName: String = "jobworkerd", dnsNames: [String], ipAddresses: [String],
        validity: TimeInterval = 365 * 86_400
    ) throws -> IssuedCertificate {
        var names = dnsNames.map { GeneralName.dnsName($0) }
        for address in ipAddresses {
            names.append(.ipAddress(ASN1OctetString(contentBytes: try Self.addressBytes(address)[...])))
        }
        return try issue(
            subject: try DistinguishedName { CommonName(commonName) }, usage: .serverAuth,
            alternativeNames: names, notValidBefore: Date() - 60, validity: validity)
    }

    /// A client certificate for the identity `name` with role `role` (admin, user or viewer).
    public func issueClientCertificate(
        name: String, role: String, notValidBefore: Date = Date() - 60, validity: TimeInterval = 365 * 86_400
    ) throws -> IssuedCertificate {
        try issueClientCertificate(
            subject: try DistinguishedName {
                OrganizationalUnitName(role)
                CommonName(name)
            }, notValidBefore: notValidBefore, validity: validity)
    }

    /// A client certificate with any `subject`: for tests of what the server makes of subjects
    /// it must refuse (several CNs, control characters).
    public func issueClientCertificate(
        subject: DistinguishedName, notValidBefore: Date = Date() - 60, validity: TimeInterval = 365 * 86_400
    ) throws -> IssuedCertificate {
        try issue(
            subject: subject, usage: .clientAuth, alternativeNames: [], notValidBefore: notValidBefore,
            validity: validity)
    }

    private func issue(
        subject: DistinguishedName, usage: ExtendedKeyUsage.Usage, alternativeNames: [GeneralName],
        notValidBefore: Date, validity: TimeInterval
    ) throws -> IssuedCertificate {
        let key = P256.Signing.PrivateKey()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: notValidBefore, notValidAfter: notValidBefore + validity,
            issuer: root.certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([usage])
                if !alternativeNames.isEmpty {
                    SubjectAlternativeNames(alternativeNames)
                }
            },
            issuerPrivateKey: root.privateKey)
        return IssuedCertificate(certificate: certificate, privateKey: key)
    }

    private static func addressBytes(_ address: String) throws -> [UInt8] {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        throw CertificateError.invalidAddress(address)
    }
}

public enum CertificateError: Error, Equatable, CustomStringConvertible {
    case invalidAddress(String)

    public var description: String {
        switch self {
        case .invalidAddress(let address): "\(address) is not an IPv4 or IPv6 address"
        }
    }
}

/// Creates `path` with `mode` from the start (O_EXCL: an existing file is an error, never
/// overwritten with looser permissions) and writes `contents`.
private func writeFile(_ path: String, contents: String, mode: mode_t) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard descriptor >= 0 else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, "errno": errno])
    }
    defer { close(descriptor) }
    let bytes = Array(contents.utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        written += count
    }
}
