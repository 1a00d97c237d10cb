#if canImport(Glibc)
    import Glibc
#endif

/// Runs a system call, retrying it while it fails with EINTR, and throws its errno otherwise.
///
/// One helper so no call site forgets EINTR or loses errno (after SwiftNIO's `syscall(blocking:)`).
@discardableResult
func systemCall<Result: BinaryInteger>(
    _ what: @autoclosure () -> String,
    _ body: () -> Result
) throws(JobWorkerError) -> Result {
    while true {
        let result = body()
        if result >= 0 { return result }
        let error = errno
        if error == EINTR { continue }
        throw JobWorkerError.system(what(), errno: error)
    }
}
