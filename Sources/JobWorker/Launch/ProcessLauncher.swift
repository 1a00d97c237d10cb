import CJobLauncher
import CLinuxEvents

#if canImport(Glibc)
    import Glibc
#endif

/// A process that has exec'd its program, and the pidfd that watches it.
struct LaunchedProcess: Sendable {
    let pid: Int32
    /// Owned by the caller: it reaps the process through it, then closes it.
    let pidfd: Int32
    /// With an init: the read end of the status pipe, where the init leaves the job's wait
    /// status before it exits. Owned by the caller.
    let statusPipe: Int32?
}

/// New namespaces for the job, with an init as PID 1.
struct NamespaceIsolation: Sendable {
    /// The jobworker-init program.
    var initPath: String
    /// The job's host name in its UTS namespace.
    var hostname: String
    /// A network namespace prepared ahead of time, or nil to create one in the clone.
    var networkNamespace: Int32?
}

/// The Swift face of `CJobLauncher`: converts Swift values to the C request and C failures to
/// `JobWorkerError`s that say which step failed and why.
struct ProcessLauncher {
    var executablePath: String
    /// argv, argv[0] included.
    var argumentVector: [String]
    var environment: [String: String]
    var workingDirectory: String?
    var stdinDescriptor: Int32
    var outputDescriptor: Int32
    /// Where the process goes before its first instruction.
    var cgroup: CgroupPlacement = .none
    /// nil: the job runs in the worker's namespaces, without an init.
    var isolation: NamespaceIsolation?

    func launch() throws(JobWorkerError) -> LaunchedProcess {
        var statusPipe: [Int32] = [-1, -1]
        if isolation != nil {
            try systemCall("creating the status pipe") { linux_pipe2(&statusPipe, O_CLOEXEC | O_NONBLOCK) }
        }
        defer { if statusPipe[1] >= 0 { closeDescriptor(statusPipe[1]) } }
        do {
            let process = try spawn(statusDescriptor: statusPipe[1])
            return LaunchedProcess(
                pid: process.pid, pidfd: process.pidfd, statusPipe: isolation == nil ? nil : statusPipe[0])
        } catch {
            if statusPipe[0] >= 0 { closeDescriptor(statusPipe[0]) }
            throw error
        }
    }

    private func spawn(statusDescriptor: Int32) throws(JobWorkerError) -> (pid: Int32, pidfd: Int32) {
        let environmentStrings = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var result = jw_spawn_result()
        var cgroupDirectory: Int32 = -1
        var procsFiles: [Int32] = []
        switch cgroup {
        case .none: break
        case .directory(let descriptor): cgroupDirectory = descriptor
        case .procsFiles(let descriptors): procsFiles = descriptors
        }
        let status = withCStringArray(argumentVector) { argv in
            withCStringArray(environmentStrings) { envp in
                executablePath.withCString { path in
                    withOptionalCString(workingDirectory) { directory in
                        withOptionalCString(isolation?.initPath) { initPath in
                            withOptionalCString(isolation?.hostname) { hostname in
                                procsFiles.withUnsafeBufferPointer { procs in
                                    var attributes = jw_spawn_attributes(
                                        path: path, argv: argv, envp: envp, working_directory: directory,
                                        stdin_fd: stdinDescriptor, output_fd: outputDescriptor,
                                        cgroup_fd: cgroupDirectory, cgroup_procs_fds: procs.baseAddress,
                                        cgroup_procs_count: Int32(procs.count),
                                        namespace_flags: isolation == nil ? 0 : JW_ALL_NAMESPACES,
                                        init_path: initPath, hostname: hostname, status_fd: statusDescriptor,
                                        network_namespace_fd: isolation?.networkNamespace ?? -1)
                                    return jw_spawn(&attributes, &result)
                                }
                            }
                        }
                    }
                }
            }
        }
        guard status == 0 else {
            throw Self.error(step: result.failed_step, errno: result.error, path: executablePath)
        }
        return (result.pid, result.pidfd)
    }

    /// Exec failures are the user's to fix and name the program; other steps are host failures.
    static func error(step: jw_step, errno error: Int32, path: String) -> JobWorkerError {
        guard step == JW_STEP_EXEC else {
            return JobWorkerError.system("starting the job (\(name(of: step)))", errno: error)
        }
        switch error {
        case ENOENT:
            return JobWorkerError(
                .commandNotFound, "\(path): no such file or directory (or its interpreter is missing)",
                systemError: error)
        case EACCES, EPERM:
            return JobWorkerError(
                .permissionDenied, "\(path): permission denied (not an executable file)", systemError: error)
        case ENOEXEC:
            return JobWorkerError(
                .execFailed, "\(path): exec format error (not a program this host can run)", systemError: error)
        default:
            return JobWorkerError(
                .execFailed, "\(path): cannot execute: \(describe(errno: error))", systemError: error)
        }
    }

    static func name(of step: jw_step) -> String {
        switch step {
        case JW_STEP_PREPARE: "prepare"
        case JW_STEP_CLONE: "clone3"
        case JW_STEP_SIGNALS: "reset signals"
        case JW_STEP_SETSID: "setsid"
        case JW_STEP_CGROUP: "join cgroup"
        case JW_STEP_STDIO: "set up stdio"
        case JW_STEP_CHDIR: "chdir"
        case JW_STEP_CLOSE_FDS: "close inherited descriptors"
        case JW_STEP_EXEC: "execve"
        case JW_STEP_MOUNT_PRIVATE: "make mounts private"
        case JW_STEP_MOUNT_PROC: "mount /proc"
        case JW_STEP_HOSTNAME: "sethostname"
        case JW_STEP_LOOPBACK: "bring up lo"
        case JW_STEP_INIT_FORK: "init: fork"
        case JW_STEP_EXEC_INIT: "execve of the init"
        default: "step \(step.rawValue)"
        }
    }
}

/// Calls `body` with a NULL-terminated C array of copies of `strings`, freed afterwards.
private func withCStringArray<Result>(
    _ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result
) -> Result {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

private func withOptionalCString<Result>(
    _ string: String?, _ body: (UnsafePointer<CChar>?) -> Result
) -> Result {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}
