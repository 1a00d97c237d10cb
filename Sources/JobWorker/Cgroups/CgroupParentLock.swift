import Foundation
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
/// The claim is an `ExclusiveLockFile` named after the parents, in `/run/jobworker` (created
/// 0700, and refused unless it is root's own directory: a lock file anyone could create would
/// let anyone keep the server from starting). cgroupfs itself holds no regular files.
final class CgroupParentLock: Sendable {
    private let lock: Mutex<ExclusiveLockFile?>

    /// Claims the parents `directories` (a worker's are always the same set, in the same order).
    init(_ directories: [String], lockDirectory: String = "/run/jobworker") throws(JobWorkerError) {
        guard let first = directories.first else {
            lock = Mutex(nil)
            return
        }
        if mkdir(lockDirectory, 0o700) != 0 && errno != EEXIST {
            throw JobWorkerError.system("creating \(lockDirectory)")
        }
        guard ownershipProblem(of: lockDirectory, type: S_IFDIR) == nil else {
            throw JobWorkerError(
                .systemFailure,
                "\(lockDirectory) must be a directory of the worker's own user that no one else may write to")
        }
        let name = first.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
        guard let taken = try ExclusiveLockFile.lock(lockDirectory + "/cgroup-" + name + ".lock") else {
            throw JobWorkerError(
                .systemFailure,
                "the cgroup \(first) is in use by another worker: give each worker its own cgroup parent")
        }
        lock = Mutex(taken)
    }

    /// Lets the parents go, for the next worker. Only the first call does anything.
    func release() {
        lock.withLock { lock in
            lock?.unlock()
            lock = nil
        }
    }
}
