import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The layout of the worker's state directory: `<root>/jobs/<job-id>/output`.
///
/// Directories are 0700 and files 0600: job output may hold secrets of the job's owner.
struct StateDirectory: Sendable {
    let root: String

    var jobsDirectory: String { root + "/jobs" }

    func jobDirectory(_ id: JobID) -> String { jobsDirectory + "/\(id)" }

    func outputPath(_ id: JobID) -> String { jobDirectory(id) + "/output" }

    /// Creates the root and its `jobs` directory if they are missing.
    func prepare() throws(JobWorkerError) {
        do {
            try FileManager.default.createDirectory(
                atPath: jobsDirectory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        } catch {
            throw JobWorkerError(.systemFailure, "cannot create state directory \(root): \(error)")
        }
    }

    /// Creates the job's directory and its empty output log, opened for appending.
    /// Returns the write descriptor that becomes the job's stdout and stderr.
    func createOutputLog(for id: JobID) throws(JobWorkerError) -> Int32 {
        try systemCall("creating the job directory") { mkdir(jobDirectory(id), 0o700) }
        do {
            return try systemCall("creating the output log") {
                open(outputPath(id), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
            }
        } catch {
            rmdir(jobDirectory(id))
            throw error
        }
    }

    /// Removes everything kept for a job.
    func removeJob(_ id: JobID) {
        unlink(outputPath(id))
        rmdir(jobDirectory(id))
    }
}
