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

    /// Creates the root and its `output` directory if they are missing.
    func prepare() throws(JobWorkerError) {
        do {
            for directory in [outputDirectory, exitsDirectory] {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700])
            }
        } catch {
            throw JobWorkerError(.systemFailure, "cannot create state directory \(root): \(error)")
        }
    }

    /// Creates the job's empty output log, opened for appending. Returns the write descriptor that
    /// becomes the job's stdout and stderr.
    func createOutputLog(for id: JobID) throws(JobWorkerError) -> FileDescriptor {
        try FileDescriptor("creating the output log") {
            open(outputPath(id), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        }
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

    /// How the job ended, as its init wrote it, if it did.
    func readExitRecord(for id: JobID) -> Termination? {
        InitChannel.readExitRecord(at: exitRecordPath(id))
    }

    func removeExitRecord(for id: JobID) {
        unlink(exitRecordPath(id))
    }

    func removeOutput(of id: JobID) {
        unlink(outputPath(id))
    }

    /// Removes everything kept for a job.
    func removeJob(_ id: JobID) {
        unlink(outputPath(id))
        unlink(exitRecordPath(id))
    }
}
