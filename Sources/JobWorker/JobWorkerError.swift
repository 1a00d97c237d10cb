#if canImport(Glibc)
    import Glibc
#endif

/// The one error type of the `JobWorker` library.
///
/// `code` says what kind of failure it is (stable, for mapping to API status codes once, at the
/// boundary); `message` says what went wrong in words a user can act on; `systemError` keeps the
/// errno, when there is one, for logs. A job that exits non-zero is a status, never an error.
public struct JobWorkerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An extensible set of failure kinds.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The request is malformed (empty command, NUL bytes, oversized arguments, bad offset).
        public static let invalidArgument = Code("invalidArgument")
        /// The command does not exist, or no PATH entry holds it.
        public static let commandNotFound = Code("commandNotFound")
        /// The command exists but may not be executed (not executable, a directory, no access).
        public static let permissionDenied = Code("permissionDenied")
        /// The kernel refused to execute the command for another reason (format, size, ...).
        public static let execFailed = Code("execFailed")
        /// No job has this id.
        public static let jobNotFound = Code("jobNotFound")
        /// The worker runs as many jobs as it may (`WorkerConfiguration.maximumRunningJobs`).
        public static let resourceExhausted = Code("resourceExhausted")
        /// The job has ended: what was asked for needs a running job (a signal).
        public static let jobEnded = Code("jobEnded")
        /// A start's client token is already taken by a job started from a different spec.
        public static let alreadyExists = Code("alreadyExists")
        /// The worker is shutting down and accepts no new jobs.
        public static let shuttingDown = Code("shuttingDown")
        /// The host refused a system call the worker needs (out of descriptors, memory, ...).
        public static let systemFailure = Code("systemFailure")
    }

    public let code: Code
    public let message: String
    /// The errno behind the failure, when a system call failed.
    public let systemError: Int32?
    /// What failed underneath, for the server log only (a database's error, an errno by name):
    /// never sent to a client, whose message for an internal failure is generic.
    public let cause: String?

    public init(_ code: Code, _ message: String, systemError: Int32? = nil, cause: String? = nil) {
        self.code = code
        self.message = message
        self.systemError = systemError
        self.cause = cause ?? systemError.map { "errno \($0) (\(describe(errno: $0)))" }
    }

    public var description: String { message }

    /// The message with its cause, for logs.
    public var logDescription: String {
        guard let cause, !message.contains(cause) else { return message }
        return "\(message) [cause: \(cause)]"
    }

    /// Whether the failure is the host's or the server's, not something the caller did: its
    /// detail belongs in the server log, and the caller gets a generic message.
    public var isInternal: Bool { code == .systemFailure }

    /// An error for a failed system call, with its errno in words.
    static func system(_ what: String, errno error: Int32 = errno) -> JobWorkerError {
        JobWorkerError(.systemFailure, "\(what): \(describe(errno: error))", systemError: error)
    }

    static func jobNotFound(_ id: JobID) -> JobWorkerError {
        JobWorkerError(.jobNotFound, "job \(id) not found")
    }
}

/// `strerror` text for an errno value, e.g. "No such file or directory".
func describe(errno error: Int32) -> String {
    String(cString: strerror(error))
}
