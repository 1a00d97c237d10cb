import CLinuxEvents

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
