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
        // The key must be the certificate's: else every handshake would fail.
        let leaf = try Certificate(pemEncoded: certificateChainPEM)
        guard try Certificate.PrivateKey(pemEncoded: privateKeyPEM).publicKey == leaf.publicKey else {
            throw CredentialsError("the private key is not the server certificate's")
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv13
        tls.certificateVerification = .noHostnameVerification
        tls.trustRoots = .certificates(authorities)
        tls.applicationProtocols = ["grpc-exp", "h2"]
        return try NIOSSLContext(configuration: tls)
    }

    public init(certificateChainPEM: String, privateKeyPEM: String, clientCAPEM: String) throws {
        state = Mutex(
            (
                try Self.makeContext(
                    certificateChainPEM: certificateChainPEM, privateKeyPEM: privateKeyPEM, clientCAPEM: clientCAPEM),
                try Certificate(pemEncoded: certificateChainPEM).notValidAfter
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
        let expiry = try Certificate(pemEncoded: certificateChainPEM).notValidAfter
        state.withLock { $0 = (new, expiry) }
    }
}

/// TLS material that cannot be used, and why.
public struct CredentialsError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
    public init(path: String, _ problem: String) { self.description = "\(path) \(problem)" }
}
