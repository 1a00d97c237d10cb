import CJobLauncher

#if canImport(Glibc)
    import Glibc
#endif

/// `JobFilesystem` resolved against the host once, at startup, into the C description the
/// launcher's child reads (`jw_job_filesystem`): bind sources checked, hidden paths sorted into
/// files and directories. A start then reads it without building anything.
final class FilesystemPlan: @unchecked Sendable {
    // Immutable after init; the C strings and arrays live as long as the plan.
    private let strings: [UnsafeMutablePointer<CChar>]
    private let binds: UnsafeMutableBufferPointer<jw_bind_mount>
    private let hiddenDirectories: UnsafeMutableBufferPointer<UnsafePointer<CChar>?>
    private let hiddenFiles: UnsafeMutableBufferPointer<UnsafePointer<CChar>?>
    private let temporaryOptions: UnsafeMutablePointer<CChar>
    /// For the startup log.
    let summary: String

    /// - Parameter serverPaths: what the server itself keeps (its state directory, the scratch
    ///   root, its keys): hidden like `JobFilesystem.alwaysHidden`.
    init(_ filesystem: JobFilesystem, serverPaths: [String]) throws(JobWorkerError) {
        var strings: [UnsafeMutablePointer<CChar>] = []
        func keep(_ string: String) -> UnsafeMutablePointer<CChar> {
            let copy = strdup(string)!
            strings.append(copy)
            return copy
        }
        var directories: [UnsafePointer<CChar>?] = []
        var files: [UnsafePointer<CChar>?] = []
        var hidden: [String] = []
        for path in JobFilesystem.alwaysHidden + serverPaths + filesystem.hiddenPaths {
            // Through symbolic links: the mount covers what the path names.
            guard let resolved = Self.resolve(path), !hidden.contains(resolved) else { continue }
            var info = stat()
            guard stat(resolved, &info) == 0 else { continue }  // nothing there to hide
            hidden.append(resolved)
            if info.st_mode & S_IFMT == S_IFDIR {
                directories.append(keep(resolved))
            } else {
                files.append(keep(resolved))
            }
        }
        var bindMounts: [jw_bind_mount] = []
        for bind in filesystem.binds {
            guard let source = Self.resolve(bind.hostPath), let target = Self.resolve(bind.jobPath) else {
                throw JobWorkerError(
                    .invalidArgument, "job bind \(bind): \(bind.hostPath) or \(bind.jobPath) does not exist")
            }
            var sourceInfo = stat()
            var targetInfo = stat()
            guard stat(source, &sourceInfo) == 0, stat(target, &targetInfo) == 0,
                sourceInfo.st_mode & S_IFMT == targetInfo.st_mode & S_IFMT
            else {
                throw JobWorkerError(
                    .invalidArgument,
                    "job bind \(bind): \(bind.jobPath) must exist on the host and be of the same kind as \(bind.hostPath) (jobs see the host's tree read-only: no mount point can be made)"
                )
            }
            bindMounts.append(
                jw_bind_mount(source: keep(source), target: keep(target), writable: bind.isWritable ? 1 : 0))
        }
        self.binds = .allocate(capacity: max(1, bindMounts.count))
        _ = self.binds.initialize(from: bindMounts)
        self.hiddenDirectories = .allocate(capacity: max(1, directories.count))
        _ = self.hiddenDirectories.initialize(from: directories)
        self.hiddenFiles = .allocate(capacity: max(1, files.count))
        _ = self.hiddenFiles.initialize(from: files)
        temporaryOptions = keep("mode=1777,size=\(filesystem.temporaryBytes)")
        self.strings = strings
        (bindCount, directoryCount, fileCount) = (bindMounts.count, directories.count, files.count)
        summary =
            "read-only host; private /tmp and /dev/shm (\(filesystem.temporaryBytes >> 20) MiB each), /var/tmp, /run and /dev; hidden: \(hidden.joined(separator: ", "))"
            + (filesystem.binds.isEmpty
                ? "" : "; bound: \(filesystem.binds.map(\.description).joined(separator: ", "))")
    }

    private let bindCount: Int
    private let directoryCount: Int
    private let fileCount: Int

    /// Calls `body` with the C description, the job's `/var/tmp` (`scratch`) filled in.
    func withDescription<Result>(scratch: String?, _ body: (UnsafePointer<jw_job_filesystem>) -> Result) -> Result {
        func call(_ scratchPointer: UnsafePointer<CChar>?) -> Result {
            var description = jw_job_filesystem(
                tmpfs_options: temporaryOptions, scratch_directory: scratchPointer,
                binds: UnsafePointer(binds.baseAddress), bind_count: Int32(bindCount),
                hidden_directories: UnsafePointer(hiddenDirectories.baseAddress),
                hidden_directory_count: Int32(directoryCount),
                hidden_files: UnsafePointer(hiddenFiles.baseAddress), hidden_file_count: Int32(fileCount))
            return withUnsafePointer(to: &description) { body($0) }
        }
        guard let scratch else { return call(nil) }
        return scratch.withCString { call($0) }
    }

    private static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    deinit {
        for string in strings { free(string) }
        binds.deallocate()
        hiddenDirectories.deallocate()
        hiddenFiles.deallocate()
    }
}
