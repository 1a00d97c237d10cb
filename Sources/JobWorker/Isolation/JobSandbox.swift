#if canImport(Glibc)
    import Glibc
#endif

/// Everything that confines every job, prepared once at startup: the filesystem plan and the
/// jobs' scratch directories (with namespaces), the system-call filter, and the init's executable,
/// held open so that an init can be exec'd once the path it lives under is hidden.
final class JobSandbox: Sendable {
    let filesystem: FilesystemPlan?
    let scratch: ScratchDirectories?
    let seccomp: SeccompProgram?
    private let initExecutable: FileDescriptor?
    /// The descriptor of the init's executable, or -1.
    let initExecutableDescriptor: Int32

    init(configuration: WorkerConfiguration, initPath: String?, serverPaths: [String]) throws(JobWorkerError) {
        seccomp = configuration.systemCallFilter == .off ? nil : try SeccompProgram(configuration.systemCallFilter)
        var executable: FileDescriptor? = nil
        if let initPath {
            let opened = try FileDescriptor("opening \(initPath)") { open(initPath, O_RDONLY | O_CLOEXEC) }
            initExecutableDescriptor = opened.rawValue
            executable = consume opened
        } else {
            initExecutableDescriptor = -1
        }
        if initPath != nil, configuration.jobFilesystem.isPrivate {
            let root = configuration.jobFilesystem.scratchDirectory ?? configuration.stateDirectory + "/scratch"
            let scratch = try ScratchDirectories(root: root)
            self.scratch = scratch
            filesystem = try FilesystemPlan(
                configuration.jobFilesystem, serverPaths: [configuration.stateDirectory, scratch.root] + serverPaths)
        } else {
            (scratch, filesystem) = (nil, nil)
        }
        initExecutable = executable
    }

    /// For the startup log.
    var summary: String {
        let filter = seccomp == nil ? "no system-call filter" : "system-call filter (\(seccomp!.count) instructions)"
        return [filesystem?.summary, filter].compactMap { $0 }.joined(separator: "; ")
    }
}
