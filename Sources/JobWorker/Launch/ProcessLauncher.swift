import CJobLauncher

#if canImport(Glibc)
    import Glibc
#endif

/// A process that has exec'd its program, and the pidfd that watches it (owned: it closes
/// when the new owner lets it go).
struct LaunchedProcess: ~Copyable {
    let pid: Int32
    let pidfd: FileDescriptor
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
    /// The job's host name, when it runs in its own UTS namespace.
    var hostname: String?
    /// The user the program runs as; nil: the worker's. Never applied to an init itself.
    var user: JobUser?
    /// What confines the job: its filesystem (for an init, which prepares it before it parks),
    /// its system-call filter, and the init's executable.
    var sandbox: JobSandbox?
    /// The job's `/var/tmp` on the host, for an init.
    var scratchDirectory: String?

    /// Starts the program as a child of the worker: in the worker's namespaces, or (for
    /// jobworker-init) in new `namespaces` with `control` as its control socket.
    func launch(namespaces: UInt64 = 0, control: Int32 = -1) throws(JobWorkerError) -> LaunchedProcess {
        var result = jw_spawn_result()
        let status = withAttributes { attributes in
            attributes.namespace_flags = namespaces
            attributes.control_fd = control
            return jw_spawn(&attributes, &result)
        }
        guard status == 0 else {
            throw Self.error(
                step: result.failed_step, errno: result.error, path: executablePath, workingDirectory: workingDirectory)
        }
        return LaunchedProcess(pid: result.pid, pidfd: FileDescriptor(adopting: result.pidfd))
    }

    /// Hands the job to a parked init, which starts it as PID 2 of its namespaces, and returns
    /// once the job has exec'd: false if the init is gone (it was killed while parked), and the
    /// caller may retry with another. Throws if the job itself could not be started; the init
    /// then exits by itself. The init copies the job's output into `outputDescriptor` up to
    /// `outputLimit` (nil: all of it), counts what it drops past it in `dropRecord`, and writes
    /// the job's wait status to `exitRecord` before it exits.
    func launch(
        in parked: ParkedInit, exitRecord: borrowing FileDescriptor, dropRecord: borrowing FileDescriptor,
        outputLimit: UInt64?
    ) throws(JobWorkerError) -> Bool {
        var header = jw_job_header()
        var strings: UnsafeMutablePointer<CChar>?
        let encoded = withAttributes { attributes in
            jw_encode_job(
                attributes.path, attributes.argv, attributes.envp, attributes.working_directory,
                attributes.change_credentials, attributes.uid, attributes.gid, &header, &strings)
        }
        guard encoded == 0, let strings else {
            throw JobWorkerError.system("encoding the job for its init")
        }
        defer { free(strings) }
        header.output_limit = outputLimit ?? 0
        switch parked.channel.start(
            header: header, strings: strings, stdin: stdinDescriptor, output: outputDescriptor,
            exitRecord: exitRecord.rawValue, dropRecord: dropRecord.rawValue)
        {
        case .started: return true
        case .gone: return false
        case .failed(let step, let error):
            throw Self.error(step: step, errno: error, path: executablePath, workingDirectory: workingDirectory)
        }
    }

    /// Calls `body` with this launch as C attributes, valid for the duration of the call.
    private func withAttributes(_ body: (inout jw_spawn_attributes) -> Int32) -> Int32 {
        let environmentStrings = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var cgroupDirectory: Int32 = -1
        var procsFiles: [Int32] = []
        switch cgroup {
        case .none: break
        case .directory(let descriptor): cgroupDirectory = descriptor
        case .procsFiles(let descriptors): procsFiles = descriptors
        }
        return withCStringArray(argumentVector) { argv in
            withCStringArray(environmentStrings) { envp in
                executablePath.withCString { path in
                    withOptionalCString(workingDirectory) { directory in
                        withOptionalCString(hostname) { hostname in
                            withFilesystem { filesystem in
                                procsFiles.withUnsafeBufferPointer { procs in
                                    var attributes = jw_spawn_attributes(
                                        path: path, argv: argv, envp: envp, working_directory: directory,
                                        stdin_fd: stdinDescriptor, output_fd: outputDescriptor,
                                        cgroup_fd: cgroupDirectory, cgroup_procs_fds: procs.baseAddress,
                                        cgroup_procs_count: Int32(procs.count), namespace_flags: 0,
                                        hostname: hostname, control_fd: -1,
                                        change_credentials: user == nil ? 0 : 1, uid: user?.userID ?? 0,
                                        gid: user?.groupID ?? 0, filesystem: filesystem,
                                        exec_fd: sandbox?.initExecutableDescriptor ?? -1,
                                        seccomp_filter: UnsafePointer(sandbox?.seccomp?.instructions),
                                        seccomp_filter_length: sandbox?.seccomp?.count ?? 0,
                                        seccomp_filter_fd: sandbox?.seccomp?.descriptor ?? -1)
                                    return body(&attributes)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Calls `body` with the job's filesystem description, or nil when the host's is kept.
    private func withFilesystem(_ body: (UnsafePointer<jw_job_filesystem>?) -> Int32) -> Int32 {
        guard let plan = sandbox?.filesystem else { return body(nil) }
        return plan.withDescription(scratch: scratchDirectory) { body($0) }
    }

    /// Exec failures and a working directory the job cannot enter are the user's to fix and
    /// name the program or the directory; other steps are host failures.
    static func error(step: jw_step, errno error: Int32, path: String, workingDirectory: String? = nil)
        -> JobWorkerError
    {
        if step == JW_STEP_CHDIR {
            return JobWorkerError(
                .invalidArgument,
                "working directory \(workingDirectory ?? "?"): \(describe(errno: error)) (give a directory the job's user can enter)",
                systemError: error)
        }
        guard step == JW_STEP_EXEC else {
            return JobWorkerError.system("starting the job (\(step.name))", errno: error)
        }
        switch error {
        case ENOENT:
            return JobWorkerError(
                .commandNotFound, "\(path): no such file or directory (or its interpreter is missing)",
                systemError: error)
        case EACCES, EPERM:
            return JobWorkerError(
                .permissionDenied,
                "\(path): permission denied (not an executable file, or not one the job's user may run)",
                systemError: error)
        case ENOEXEC:
            return JobWorkerError(
                .execFailed, "\(path): exec format error (not a program this host can run)", systemError: error)
        default:
            return JobWorkerError(
                .execFailed, "\(path): cannot execute: \(describe(errno: error))", systemError: error)
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

extension jw_step {
    /// The words for this step, from the table beside the C enum (`JW_STEPS`).
    var name: String { jw_step_name(self).map { String(cString: $0) } ?? "step \(rawValue)" }
}
