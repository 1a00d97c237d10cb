#if canImport(Glibc)
    import Glibc
#endif

/// An open file descriptor that this process owns, closed exactly once: when it goes away.
///
/// Non-copyable, so that a descriptor has one owner at a time and the compiler refuses a second
/// close or a use after the close. A number the kernel has already reused for another file is
/// never closed by mistake. Calls into C borrow `rawValue` while the owner holds it.
struct FileDescriptor: ~Copyable, Sendable {
    let rawValue: Int32

    /// Takes ownership of `rawValue`, a descriptor that nothing else will close.
    init(adopting rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// Runs `body`, a system call that returns a new descriptor, retrying on EINTR; throws its
    /// errno, described as `what`, on failure.
    init(_ what: @autoclosure () -> String, _ body: () -> Int32) throws(JobWorkerError) {
        self.init(adopting: try systemCall(what(), body))
    }

    /// Closes the descriptor now rather than at the end of the owner's scope.
    consuming func closeNow() {}

    /// Gives up ownership without closing: for a descriptor that another process or a C call now
    /// owns and will close itself.
    consuming func release() -> Int32 {
        let rawValue = rawValue
        discard self
        return rawValue
    }

    deinit {
        // EINTR from close still closes the descriptor on Linux: never retried.
        _ = Glibc.close(rawValue)
    }
}

/// Several descriptors owned together, such as a v1 cgroup's `cgroup.procs` files (one per
/// hierarchy): all of them closed when the set goes away.
struct FileDescriptorSet: ~Copyable, Sendable {
    private(set) var rawValues: [Int32] = []

    init() {}

    mutating func insert(_ descriptor: consuming FileDescriptor) {
        rawValues.append(descriptor.release())
    }

    deinit {
        for rawValue in rawValues { FileDescriptor(adopting: rawValue).closeNow() }
    }
}
