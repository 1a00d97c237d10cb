#if canImport(Glibc)
    import Glibc
#endif

/// Why `path` cannot be trusted as the worker's own — not of `type` (or a symlink), owned by
/// another user, or writable by its group or others — or nil if it can. A path someone else
/// controls could be swapped or planted under the worker. A missing path is a problem unless
/// `allowingMissing` (the worker is about to create it).
func ownershipProblem(of path: String, type: mode_t, allowingMissing: Bool = false) -> String? {
    var info = stat()
    guard lstat(path, &info) == 0 else {
        let error = errno
        return error == ENOENT && allowingMissing ? nil : "cannot be examined (\(describe(errno: error)))"
    }
    if info.st_mode & S_IFMT == S_IFLNK { return "is a symbolic link" }
    if info.st_mode & S_IFMT != type { return type == S_IFDIR ? "is not a directory" : "is not a regular file" }
    if info.st_uid != geteuid() { return "is owned by uid \(info.st_uid), not by the server's user (uid \(geteuid()))" }
    if info.st_mode & 0o022 != 0 {
        return "is writable by its group or by others (mode \(String(info.st_mode & 0o7777, radix: 8)))"
    }
    return nil
}
