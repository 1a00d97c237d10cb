import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The jobs' `/var/tmp`: one fresh directory per job under a root of the server's that no job can
/// reach (it is hidden from them), on disk, so that a job that must write gigabytes writes them
/// there, under its IO limits, rather than in memory.
///
/// A directory is made (root's, 0700) when the job's init is parked, handed to the job's user when
/// the job starts, and removed, with all it holds, once the job's processes are gone.
struct ScratchDirectories: Sendable {
    let root: String

    /// Creates the root (0700) if missing and refuses one that someone else could change.
    init(root: String) throws(JobWorkerError) {
        self.root = root
        if mkdir(root, 0o700) != 0 && errno != EEXIST {
            throw JobWorkerError.system("creating the jobs' scratch directory \(root)")
        }
        if let problem = ownershipProblem(of: root, type: S_IFDIR) {
            throw JobWorkerError(
                .systemFailure,
                "the jobs' scratch directory \(root) \(problem): give the server a directory of its own user that no one else may write to (mode 0700)"
            )
        }
    }

    func path(of id: JobID) -> String { root + "/" + id.description }

    /// A fresh, empty directory for the job, that only root may use until `hand(_:to:)`.
    func create(for id: JobID) throws(JobWorkerError) -> String {
        let path = path(of: id)
        try systemCall("creating the job's /var/tmp \(path)") { mkdir(path, 0o700) }
        return path
    }

    /// Gives the job's directory to the user it runs as.
    func hand(_ id: JobID, to user: JobUser) throws(JobWorkerError) {
        try systemCall("handing the job its /var/tmp") { chown(path(of: id), user.userID, user.groupID) }
    }

    /// Removes the job's directory and everything in it (symbolic links are removed, never
    /// followed). Its processes are gone, so nothing changes it meanwhile.
    func remove(_ id: JobID) {
        let path = path(of: id)
        // Most jobs leave their /var/tmp empty: one rmdir, and the walk only when it is not.
        if rmdir(path) == 0 || errno == ENOENT { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Removes what a previous run left, except the directories of jobs still running. Returns how
    /// many were removed.
    @discardableResult
    func removeLeftovers(keeping ids: Set<String>) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        var removed = 0
        for name in names where !ids.contains(name) {
            if (try? FileManager.default.removeItem(atPath: root + "/" + name)) != nil { removed += 1 }
        }
        return removed
    }
}
