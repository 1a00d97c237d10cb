import Foundation
import NIOSSL
import Synchronization
import X509

/// The server's TLS material (its certificate chain and key, and the client CA), replaceable
/// while the server runs: each new connection's handshake uses the material current when it
/// was accepted, and connections already open keep theirs. A certificate rotation is a
/// `replace` (jobworkerd's SIGHUP), never a restart.
public final class ServerCredentials: Sendable {
    private let state: Mutex<(context: NIOSSLContext, notValidAfter: Date)>

    /// What a handshake is configured with; checked in full before anything is used, so that a
    /// broken file is an error here, never a failed handshake later.
    public static func makeContext(certificateChainPEM: String, privateKeyPEM: String, clientCAPEM: String) throws
        -> NIOSSLContext
    {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8))
        guard !chain.isEmpty else { throw CredentialsError("the server certificate file holds no certificate") }
        let key = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
        let authorities = try NIOSSLCertificate.fromPEMBytes(Array(clientCAPEM.utf8))
        guard !authorities.isEmpty else { throw CredentialsError("the client CA file holds no certificate") }
        // The key must be the certificate's, and the certificate valid now: else every
        // handshake would fail. The leaf is the chain's first; the key its file's key block (a
        // file may hold an EC PARAMETERS block too).
        let leaf = try Self.leaf(of: chain)
        guard try Certificate.PrivateKey(pemEncoded: Self.keyBlock(of: privateKeyPEM)).publicKey == leaf.publicKey
        else {
            throw CredentialsError("the private key is not the server certificate's")
        }
        let now = Date()
        guard leaf.notValidBefore <= now, now <= leaf.notValidAfter else {
            throw CredentialsError(
                "the server certificate is not valid now (valid from \(leaf.notValidBefore) until \(leaf.notValidAfter))"
            )
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv13
        tls.certificateVerification = .noHostnameVerification
        tls.trustRoots = .certificates(authorities)
        tls.applicationProtocols = ["grpc-exp", "h2"]
        return try NIOSSLContext(configuration: tls)
    }

    /// The server's own certificate: the chain's first.
    private static func leaf(of chain: [NIOSSLCertificate]) throws -> Certificate {
        guard let first = chain.first else {
            throw CredentialsError("the server certificate file holds no certificate")
        }
        return try Certificate(derEncoded: try first.toDERBytes())
    }

    /// The file's private key block, without any other block (EC PARAMETERS) around it.
    private static func keyBlock(of pem: String) throws -> String {
        guard let begin = pem.range(of: #"-----BEGIN [A-Z ]*PRIVATE KEY-----"#, options: .regularExpression),
            let end = pem.range(
                of: #"-----END [A-Z ]*PRIVATE KEY-----"#, options: .regularExpression,
                range: begin.upperBound..<pem.endIndex)
        else { throw CredentialsError("the private key file holds no PRIVATE KEY block") }
        return String(pem[begin.lowerBound..<end.upperBound])
    }

    public init(certificateChainPEM: String, privateKeyPEM: String, clientCAPEM: String) throws {
        state = Mutex(
            (
                try Self.makeContext(
                    certificateChainPEM: certificateChainPEM, privateKeyPEM: privateKeyPEM, clientCAPEM: clientCAPEM),
                try Self.leaf(of: NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8))).notValidAfter
            ))
    }

    /// The material for the next connection.
    var current: NIOSSLContext { state.withLock { $0.context } }

    /// When the server certificate new connections get expires: for an alert well before.
    public var notValidAfter: Date { state.withLock { $0.notValidAfter } }

    /// From the next connection on, this material; throws (and changes nothing) if it is broken.
    public func replace(certificateChainPEM: String, privateKeyPEM: String, clientCAPEM: String) throws {
        let new = try Self.makeContext(
            certificateChainPEM: certificateChainPEM, privateKeyPEM: privateKeyPEM, clientCAPEM: clientCAPEM)
        let expiry = try Self.leaf(of: NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8))).notValidAfter
        state.withLock { $0 = (new, expiry) }
    }
}

/// TLS material that cannot be used, and why.
public struct CredentialsError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
    public init(path: String, _ problem: String) { self.description = "\(path) \(problem)" }
}
