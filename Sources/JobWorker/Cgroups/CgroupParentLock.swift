import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A worker's claim on its parent cgroups, held until `release()` or the end of the process.
///
/// At startup a worker kills and removes every job cgroup under its parents that its own records
/// do not name: the leftovers of a crash. A second worker on the same parents (another state
/// directory, the same cgroup parent name) would take the first one's running jobs for
/// leftovers and kill them, so the parents belong to one worker at a time.
///
/// The claim is an exclusive `flock` on each parent directory. A POSIX lock, as the state
/// directory has, needs a descriptor open for writing, which a directory cannot have. The
/// descriptors are close-on-exec: inits and jobs never hold them.
final class CgroupParentLock: Sendable {
    private let descriptors: Mutex<[Int32]>

    /// Takes every directory of `directories`, or none of them.
    init(_ directories: [String]) throws(JobWorkerError) {
        var taken: [Int32] = []
        func fail(_ error: JobWorkerError) -> JobWorkerError {
            for descriptor in taken { closeDescriptor(descriptor) }
            return error
        }
        for directory in directories {
            let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard descriptor >= 0 else { throw fail(.system("opening \(directory)")) }
            taken.append(descriptor)
            var result: Int32
            repeat { result = flock(descriptor, LOCK_EX | LOCK_NB) } while result != 0 && errno == EINTR
            guard result == 0 else {
                guard errno == EWOULDBLOCK else { throw fail(.system("locking \(directory)")) }
                throw fail(
                    JobWorkerError(
                        .systemFailure,
                        "the cgroup \(directory) is in use by another worker: give each worker its own cgroup parent"))
            }
        }
        descriptors = Mutex(taken)
    }

    /// Lets the parents go, for the next worker. Only the first call closes anything.
    func release() {
        for descriptor in descriptors.withLock({ descriptors in
            defer { descriptors = [] }
            return descriptors
        }) {
            closeDescriptor(descriptor)
        }
    }
}
