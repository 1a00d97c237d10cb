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

    func outputPath(_ id: JobID) -> String { outputDirectory + "/\(id).log" }

    /// Creates the root and its `output` directory if they are missing.
    func prepare() throws(JobWorkerError) {
        do {
            try FileManager.default.createDirectory(
                atPath: outputDirectory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        } catch {
            throw JobWorkerError(.systemFailure, "cannot create state directory \(root): \(error)")
        }
    }

    /// Creates the job's empty output log, opened for appending. Returns the write descriptor that
    /// becomes the job's stdout and stderr.
    func createOutputLog(for id: JobID) throws(JobWorkerError) -> Int32 {
        try systemCall("creating the output log") {
            open(outputPath(id), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        }
    }

    /// Removes everything kept for a job.
    func removeJob(_ id: JobID) {
        unlink(outputPath(id))
    }
}
