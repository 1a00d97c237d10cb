#if canImport(Glibc)
    import Glibc
#endif

/// Checks a requested command line and resolves the command to an executable path.
///
/// Everything that can be checked is checked here, in the worker, before a process exists, so
/// that an error reported from the child always means the exec itself failed.
struct CommandLineValidation {
    let limits: ArgumentLimits
    /// The job's PATH, used for bare command names.
    let searchPath: String

    /// Returns the absolute path of the program to execute, or throws a user-facing error.
    /// `searchPath` is the job's PATH when its request sets one.
    func resolve(command: String, arguments: [String], searchPath: String? = nil) throws(JobWorkerError) -> String {
        try validate(command: command, arguments: arguments)
        if command.hasPrefix("/") {
            return command
        }
        if command.contains("/") {
            throw JobWorkerError(
                .invalidArgument,
                "command \"\(command)\" must be an absolute path or a name found in PATH")
        }
        return try search(command, in: searchPath ?? self.searchPath)
    }

    /// Arguments and environment together as exec counts them (each string, its terminator and
    /// its pointer), against this host's ARG_MAX.
    func checkExecSize(arguments: [String], environment: [String: String]) throws(JobWorkerError) {
        let strings = arguments.map(\.utf8.count) + environment.map { $0.key.utf8.count + $0.value.utf8.count + 1 }
        let total = strings.reduce(0) { $0 + $1 + 1 + MemoryLayout<UInt>.size }
        let limit = ArgumentLimits.hostTotalBytes * 2 - 4096
        guard total <= limit else {
            throw JobWorkerError(
                .invalidArgument,
                "command line and environment are \(total) bytes as exec counts them (at most \(limit), this host's ARG_MAX)"
            )
        }
    }

    private func validate(command: String, arguments: [String]) throws(JobWorkerError) {
        guard !command.isEmpty else {
            throw JobWorkerError(.invalidArgument, "command must not be empty")
        }
        guard arguments.count <= limits.maximumCount else {
            throw JobWorkerError(
                .invalidArgument,
                "too many arguments: \(arguments.count) (at most \(limits.maximumCount))")
        }
        var total = 0
        for (index, value) in ([command] + arguments).enumerated() {
            let what = index == 0 ? "command" : "argument \(index)"
            let length = value.utf8.count
            guard !value.utf8.contains(0) else {
                throw JobWorkerError(.invalidArgument, "\(what) contains a NUL byte")
            }
            guard length <= limits.maximumLength else {
                throw JobWorkerError(
                    .invalidArgument,
                    "\(what) is \(length) bytes long (at most \(limits.maximumLength))")
            }
            total += length + 1
        }
        guard total <= limits.maximumTotalBytes else {
            throw JobWorkerError(
                .invalidArgument,
                "command and arguments are \(total) bytes long (at most \(limits.maximumTotalBytes), half of ARG_MAX)")
        }
    }

    /// Looks `name` up in each PATH directory, as execvp does, but in the worker.
    private func search(_ name: String, in searchPath: String) throws(JobWorkerError) -> String {
        var foundButNotExecutable: String?
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: true) {
            guard directory.hasPrefix("/") else { continue }
            let candidate = directory.hasSuffix("/") ? "\(directory)\(name)" : "\(directory)/\(name)"
            var info = stat()
            guard stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if access(candidate, X_OK) == 0 {
                return candidate
            }
            foundButNotExecutable = foundButNotExecutable ?? candidate
        }
        if let path = foundButNotExecutable {
            throw JobWorkerError(.permissionDenied, "\(path): permission denied (not executable)")
        }
        throw JobWorkerError(.commandNotFound, "\(name): command not found in PATH \(searchPath)")
    }
}
