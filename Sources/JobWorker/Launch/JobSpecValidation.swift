import CLinuxEvents

#if canImport(Glibc)
    import Glibc
#endif

/// Checks the parts of a `JobSpec` beyond its command line: the environment and the working
/// directory, before anything is created, with a message that names the offending entry.
struct JobSpecValidation {
    /// Most environment entries a request may add.
    static let maximumEnvironmentCount = 256
    /// Most bytes of them in all, counting `NAME=VALUE` and a terminator each.
    static let maximumEnvironmentBytes = 128 * 1024
    /// The longest working directory (PATH_MAX, terminator included).
    static let maximumPathBytes = 4096

    /// The job's whole environment: the worker's, with the request's on top.
    static func environment(_ requested: [String: String], over base: [String: String]) throws(JobWorkerError)
        -> [String: String]
    {
        guard requested.count <= maximumEnvironmentCount else {
            throw JobWorkerError(
                .invalidArgument,
                "too many environment variables: \(requested.count) (at most \(maximumEnvironmentCount))")
        }
        var total = 0
        for (name, value) in requested.sorted(by: { $0.key < $1.key }) {
            guard isName(name) else {
                throw JobWorkerError(
                    .invalidArgument,
                    "environment variable \(name.debugDescription): a name is a letter or _ and then letters, digits or _"
                )
            }
            guard !value.utf8.contains(0) else {
                throw JobWorkerError(.invalidArgument, "environment variable \(name): its value contains a NUL byte")
            }
            total += name.utf8.count + value.utf8.count + 2
            guard total <= maximumEnvironmentBytes else {
                throw JobWorkerError(
                    .invalidArgument,
                    "environment variables are over \(maximumEnvironmentBytes) bytes in all (at \(name))")
            }
        }
        return base.merging(requested) { _, new in new }
    }

    /// The working directory, checked for form; whether the job's user can enter it is known
    /// only in the job (its view of the filesystem, its user): the launcher's `chdir` says.
    static func workingDirectory(_ path: String) throws(JobWorkerError) -> String {
        guard path.hasPrefix("/") else {
            throw JobWorkerError(
                .invalidArgument, "working directory \(path.debugDescription): give an absolute path")
        }
        guard !path.utf8.contains(0), path.utf8.count < maximumPathBytes else {
            throw JobWorkerError(
                .invalidArgument,
                "working directory: a path without NUL bytes, under \(maximumPathBytes) bytes")
        }
        return path
    }

    /// The longest client token, in bytes.
    static let maximumClientTokenBytes = 128

    /// Checks a client token: not empty, printable, at most 128 bytes.
    static func clientToken(_ token: String) throws(JobWorkerError) {
        guard !token.isEmpty, token.utf8.count <= maximumClientTokenBytes else {
            throw JobWorkerError(
                .invalidArgument, "client token is \(token.utf8.count) bytes (1 to \(maximumClientTokenBytes))")
        }
        guard !token.unicodeScalars.contains(where: { $0.properties.generalCategory.isControlOrFormat }) else {
            throw JobWorkerError(.invalidArgument, "client token \(token.debugDescription) holds control characters")
        }
    }

    /// The longest name, in bytes.
    static let maximumNameBytes = 128
    /// The most labels a job may carry.
    static let maximumLabels = 64

    /// Checks a job's name: printable, at most 128 bytes.
    static func name(_ name: String) throws(JobWorkerError) {
        guard name.utf8.count <= maximumNameBytes else {
            throw JobWorkerError(.invalidArgument, "name is \(name.utf8.count) bytes (at most \(maximumNameBytes))")
        }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory.isControlOrFormat }) else {
            throw JobWorkerError(.invalidArgument, "name \(name.debugDescription) holds control characters")
        }
    }

    /// Checks labels as Kubernetes does: at most 64; a key is a name of at most 63 characters
    /// (alphanumeric at both ends, `-`, `_`, `.` between) with an optional DNS-subdomain prefix
    /// and `/`; a value is empty or such a name.
    static func labels(_ labels: [String: String]) throws(JobWorkerError) {
        guard labels.count <= maximumLabels else {
            throw JobWorkerError(.invalidArgument, "too many labels: \(labels.count) (at most \(maximumLabels))")
        }
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let prefixOK = parts.count == 1 || isDNSSubdomain(String(parts[0]))
            guard prefixOK, isLabelName(String(parts[parts.count - 1])) else {
                throw JobWorkerError(
                    .invalidArgument,
                    "label key \(key.debugDescription): [prefix/]name, a name of at most 63 letters, digits, -, _ or ., alphanumeric at both ends"
                )
            }
            guard value.isEmpty || isLabelName(value) else {
                throw JobWorkerError(
                    .invalidArgument,
                    "label \(key): value \(value.debugDescription) is not at most 63 letters, digits, -, _ or ., alphanumeric at both ends"
                )
            }
        }
    }

    private static func isLabelName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
        let alphanumeric = { (byte: UInt8) in isLetter(byte) || (0x30...0x39).contains(byte) }
        return alphanumeric(first) && alphanumeric(last)
            && bytes.allSatisfy {
                alphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
            }
    }

    private static func isDNSSubdomain(_ text: String) -> Bool {
        let lower = { (byte: UInt8) in (0x61...0x7a).contains(byte) || (0x30...0x39).contains(byte) }
        return text.utf8.count <= 253
            && text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { part in
                let bytes = Array(part.utf8)
                guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
                return lower(first) && lower(last) && bytes.allSatisfy { lower($0) || $0 == UInt8(ascii: "-") }
            }
    }

    /// The stop signals a job may choose: those it can catch and its init forwards.
    static let stopSignals: [Int32: String] = [
        SIGHUP: "HUP", SIGINT: "INT", SIGQUIT: "QUIT", SIGTERM: "TERM", SIGUSR1: "USR1", SIGUSR2: "USR2",
    ]

    static func stopSignal(_ signal: Int32) throws(JobWorkerError) {
        guard stopSignals[signal] != nil else {
            throw JobWorkerError(
                .invalidArgument,
                "stop signal \(signal): one of \(stopSignals.sorted { $0.key < $1.key }.map { "\($0.value) (\($0.key))" }.joined(separator: ", "))"
            )
        }
    }

    /// Most bytes of standard input a request may carry.
    static let maximumStandardInputBytes = 1 << 20

    /// A memory file holding `bytes`, for the job's standard input.
    static func standardInput(_ bytes: [UInt8]) throws(JobWorkerError) -> FileDescriptor {
        guard bytes.count <= maximumStandardInputBytes else {
            throw JobWorkerError(
                .invalidArgument, "stdin is \(bytes.count) bytes (at most \(maximumStandardInputBytes))")
        }
        return try FileDescriptor("creating the job's stdin") {
            bytes.withUnsafeBytes { linux_memory_file("jobworker-stdin", $0.baseAddress, $0.count) }
        }
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`.
    static func isName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || isLetter(first) else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isLetter($0) || (0x30...0x39).contains($0) }
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
    }
}
