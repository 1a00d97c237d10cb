import CLinuxEvents
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive lock on a file, held by this process until `unlock()` or its end: how a worker
/// claims what must be its alone (its state directory, its parent cgroups).
///
/// A POSIX write lock, which belongs to the process: a child between its clone and its exec
/// shares the descriptor but not the lock, so a worker killed at that moment leaves nothing
/// locked. (A `flock` or an OFD lock belongs to the open file, and would stay held until the
/// child's exec: a worker restarted at once after a crash found its cgroups "in use".)
///
/// Two rules of POSIX locks shape the rest. They do not exclude a second holder in the same
/// process, so a process-wide table of the files locked does. And closing any descriptor of the
/// file drops the process's lock, so a file already in the table is never opened again: it is
/// looked up by `stat` first, under the table's lock (held for a `stat`, an `open` and a
/// non-blocking `fcntl` of a local file, never for a wait).
final class ExclusiveLockFile: Sendable {
    private let path: String
    /// Open while the lock is held; closing it lets the lock go.
    private let descriptor: Mutex<FileDescriptor?>
    private let key: FileKey

    private init(path: String, descriptor: consuming FileDescriptor, key: FileKey) {
        self.path = path
        self.descriptor = Mutex(descriptor)
        self.key = key
    }

    /// Locks the file at `path` (created 0600 if missing); nil if someone else holds it.
    static func lock(_ path: String) throws(JobWorkerError) -> ExclusiveLockFile? {
        try lockedInThisProcess.withLock { locked throws(JobWorkerError) -> ExclusiveLockFile? in
            while true {
                var info = stat()
                if stat(path, &info) == 0, locked.contains(FileKey(info)) { return nil }
                let descriptor = try FileDescriptor("opening \(path)") {
                    open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
                }
                fstat(descriptor.rawValue, &info)
                let key = FileKey(info)
                // Not ours (checked above, and nobody else in this process could have taken it since).
                guard linux_lock_file(descriptor.rawValue) == 0 else {
                    let error = errno
                    if error == EAGAIN || error == EACCES { return nil }
                    throw JobWorkerError.system("locking \(path)", errno: error)
                }
                // The holder before us removes the file as it lets go (`unlock`): if it did so
                // between our open and our lock, ours is a lock on a file nobody else will open.
                var current = stat()
                guard stat(path, &current) == 0, FileKey(current) == key else {
                    continue
                }
                locked.insert(key)
                return ExclusiveLockFile(path: path, descriptor: descriptor, key: key)
            }
        }
    }

    /// Lets the file go, for the next holder, and removes it: lock files of cgroup parents that
    /// no worker uses again (a test's, a benchmark's) do not pile up.
    /// Only the first call does anything.
    func unlock() {
        lockedInThisProcess.withLock { locked in
            guard let descriptor = descriptor.withLock({ $0.take() }) else { return }
            unlink(path)
            locked.remove(key)
            descriptor.closeNow()
        }
    }
}

/// A file, whatever path names it.
private struct FileKey: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}

/// The lock files held by this process.
private let lockedInThisProcess = Mutex<Set<FileKey>>([])
