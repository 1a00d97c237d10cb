#if canImport(Glibc)
    import Glibc
#endif

/// "HOST:PORT" as operators write it on both sides of the API: `127.0.0.1:50051`,
/// `localhost:50051`, `[::1]:50051` (IPv6 in brackets, as in URLs).
public struct HostAndPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses "HOST:PORT"; nil if the port is missing or outside 0...65535, or the host is empty.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil  // an IPv6 address needs brackets, or its last group reads as the port
        }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The host as an IP literal, if it is one (then no SNI is sent and the certificate must
    /// carry that address as an IP SAN).
    var ipAddressFamily: IPFamily? {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return .v4 }
        if inet_pton(AF_INET6, host, &v6) == 1 { return .v6 }
        return nil
    }

    enum IPFamily { case v4, v6 }
}
