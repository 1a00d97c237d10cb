#if canImport(Glibc)
    import Glibc
#endif

/// Starts a plain pthread running `body`, for work that must not run on Swift's cooperative
/// pool: waiting in `epoll_wait`, or starting processes at a scheduling priority of its own.
/// Join it with `pthread_join` once `body` has been told to return.
func startDedicatedThread(_ what: String, _ body: @escaping @Sendable () -> Void) throws(JobWorkerError) -> pthread_t {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(
        &thread, nil,
        { context in
            Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, context)
    guard result == 0 else {
        Unmanaged<Box>.fromOpaque(context).release()
        throw JobWorkerError.system("starting the \(what) thread", errno: result)
    }
    return thread
}
