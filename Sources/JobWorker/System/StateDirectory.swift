import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The layout of the worker's state directory: `<root>/output/<job-id>.log`.
///
/// One flat directory of logs: a job costs one file, not a directory and a file. The directory
/// is 0700 and logs are 0600: job output may hold secrets of the job's owner.
struct StateDirectory: Sendable {
    let root: String

    var outputDirectory: String { root + "/output" }
    /// Where a job's init writes how the job ended, so that it survives the worker.
    var exitsDirectory: String { root + "/exits" }

    func outputPath(_ id: JobID) -> String { outputDirectory + "/\(id).log" }
    func exitRecordPath(_ id: JobID) -> String { exitsDirectory + "/\(id)" }
    /// Where a job's init counts the output bytes it dropped past the job's output limit.
    func dropRecordPath(_ id: JobID) -> String { exitsDirectory + "/\(id).dropped" }

    /// Creates the root and its `output` and `exits` directories if they are missing, and
    /// refuses a directory that someone else could plant files in or swap out: each must be a
    /// real directory (not a symlink), owned by the worker's user, and writable by no one else.
    /// What the worker creates inside is 0700 or 0600 whatever mode the root had, and the root is
    /// made 0700: jobs, which run as other users, cannot list or read it.
    func prepare() throws(JobWorkerError) {
        do {
            try FileManager.default.createDirectory(
                atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw JobWorkerError(.systemFailure, "cannot create state directory \(root): \(error)")
        }
        try Self.checkOwned(root, type: S_IFDIR)
        chmod(root, 0o700)
        for directory in [outputDirectory, exitsDirectory] {
            if mkdir(directory, 0o700) != 0 && errno != EEXIST {
                throw JobWorkerError.system("creating \(directory)")
            }
            try Self.checkOwned(directory, type: S_IFDIR)
        }
    }

    /// Refuses `path` unless it is of `type`, the worker's own and writable by no one else
    /// (`ownershipProblem`); a missing path is fine (the worker creates it).
    static func checkOwned(_ path: String, type: mode_t) throws(JobWorkerError) {
        guard let problem = ownershipProblem(of: path, type: type, allowingMissing: true) else { return }
        throw JobWorkerError(
            .systemFailure,
            "the state directory's \(path) \(problem): give the server a directory of its own user that no one else may write to (mode 0700)"
        )
    }

    /// Creates the job's empty output log. Returns the write descriptor that becomes the job's
    /// stdout and stderr, opened for appending, or (`forInit`) the one its init splices the job's
    /// output into (splice refuses an appending file; the init is the log's only writer).
    func createOutputLog(for id: JobID, forInit: Bool = false) throws(JobWorkerError) -> FileDescriptor {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (forInit ? 0 : O_APPEND)
        return try FileDescriptor("creating the output log") { open(outputPath(id), flags, 0o600) }
    }

    /// Takes the directory for this worker alone (`ExclusiveLockFile` on `<root>/lock`): two
    /// workers on one directory would each believe they own its jobs and its records.
    func lock() throws(JobWorkerError) -> ExclusiveLockFile {
        guard let lock = try ExclusiveLockFile.lock(root + "/lock") else {
            throw JobWorkerError(
                .systemFailure, "the state directory \(root) is in use by another worker: give each its own")
        }
        return lock
    }

    /// Creates the empty exit record an init writes the job's wait status to.
    func createExitRecord(for id: JobID) throws(JobWorkerError) -> FileDescriptor {
        try FileDescriptor("creating the exit record") {
            open(exitRecordPath(id), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        }
    }

    /// Creates the empty drop record the init counts dropped output bytes in.
    func createDropRecord(for id: JobID) throws(JobWorkerError) -> FileDescriptor {
        try FileDescriptor("creating the drop record") {
            open(dropRecordPath(id), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        }
    }

    /// How many output bytes the job's init dropped past the output limit so far (0: none, or no
    /// record).
    func droppedOutputBytes(of id: JobID) -> UInt64 {
        Self.droppedOutputBytes(at: dropRecordPath(id))
    }

    static func droppedOutputBytes(at path: String) -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var count: UInt64 = 0
        return pread(fd, &count, MemoryLayout<UInt64>.size, 0) == MemoryLayout<UInt64>.size ? count : 0
    }

    /// How the job ended, as its init wrote it, if it did.
    func readExitRecord(for id: JobID) -> Termination? {
        InitChannel.readExitRecord(at: exitRecordPath(id))
    }

    func removeExitRecord(for id: JobID) {
        unlink(exitRecordPath(id))
        unlink(dropRecordPath(id))
    }

    func removeOutput(of id: JobID) {
        unlink(outputPath(id))
    }

    /// Refuses a start when the directory's file system has less free space than `floor`
    /// leaves: every job writes its output and record there.
    func checkFreeSpace(_ floor: DiskSpaceFloor) throws(JobWorkerError) {
        var info = statvfs()
        guard statvfs(root, &info) == 0 else { throw JobWorkerError.system("checking the free space of \(root)") }
        let free = UInt64(info.f_bavail) * UInt64(info.f_frsize)
        let required = floor.floor(ofTotal: UInt64(info.f_blocks) * UInt64(info.f_frsize))
        guard free < required else { return }
        throw JobWorkerError(
            .resourceExhausted,
            "the state directory \(root) has \(Self.mebibytes(free)) free, below the floor of \(Self.mebibytes(required)): "
                + "no job starts until space is freed")
    }

    private static func mebibytes(_ bytes: UInt64) -> String {
        String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }

    /// The disk space the job's log takes: its allocated blocks, whatever its size says.
    func allocatedOutputBytes(of id: JobID) -> UInt64 {
        var info = stat()
        return stat(outputPath(id), &info) == 0 ? UInt64(max(0, info.st_blocks)) * 512 : 0
    }

    /// Removes everything kept for a job.
    func removeJob(_ id: JobID) {
        unlink(outputPath(id))
        unlink(exitRecordPath(id))
        unlink(dropRecordPath(id))
    }
}
