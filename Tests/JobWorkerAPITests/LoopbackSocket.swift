import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP socket bound to 127.0.0.1 on a port the kernel picked, listening if asked (the kernel
/// then completes handshakes into its backlog whether or not anyone accepts).
func bindLoopbackSocket(listening: Bool) throws -> (descriptor: Int32, port: Int) {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = loopbackAddress(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    guard descriptor >= 0,
        withSockaddr(&address, { bind(descriptor, $0, length) }) == 0,
        !listening || listen(descriptor, 16) == 0,
        withSockaddr(&address, { getsockname(descriptor, $0, &length) }) == 0
    else {
        let error = errno
        if descriptor >= 0 { close(descriptor) }
        throw POSIXError(POSIXErrorCode(rawValue: error) ?? .EIO)
    }
    return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
}

/// A socket connected to 127.0.0.1:`port`, or nil.
func connectLoopback(port: Int) -> Int32? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = loopbackAddress(port: port)
    guard descriptor >= 0,
        withSockaddr(&address, { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }) == 0
    else {
        if descriptor >= 0 { close(descriptor) }
        return nil
    }
    return descriptor
}

private func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

private func withSockaddr<T>(_ address: inout sockaddr_in, _ body: (UnsafeMutablePointer<sockaddr>) -> T) -> T {
    withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
}
