import Foundation

/// The jobctl binary, built next to the test binary.
let jobctlPath = buildDirectory.appendingPathComponent("jobctl").path

/// What a finished jobctl run printed, and how it ended.
struct JobctlResult: CustomStringConvertible {
    var status: Int32
    var output: Data
    var error: String

    var text: String { String(decoding: output, as: UTF8.self) }
    var description: String {
        "exit \(status), stdout \(text.prefix(500).debugDescription), stderr \(error.debugDescription)"
    }
}

/// jobctl as a user runs it against `daemon`: no connection flags, only the environment that
/// points at the daemon and its development PKI (plus `environment`).
func jobctlProcess(_ arguments: [String], daemon: RunningDaemon?, environment: [String: String] = [:]) -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: jobctlPath)
    process.arguments = arguments
    var variables = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("JOBCTL_") }
    if let daemon {
        variables["JOBCTL_SERVER"] = daemon.address
        variables["JOBCTL_DEV_PKI"] = daemon.pki
    }
    variables.merge(environment) { $1 }
    process.environment = variables
    return process
}

/// Runs jobctl to completion (stdout and stderr through files: a pipe could fill up).
func jobctl(_ arguments: String..., daemon: RunningDaemon?, environment: [String: String] = [:]) throws
    -> JobctlResult
{
    try jobctl(arguments, daemon: daemon, environment: environment)
}

func jobctl(_ arguments: [String], daemon: RunningDaemon?, environment: [String: String] = [:]) throws
    -> JobctlResult
{
    let process = jobctlProcess(arguments, daemon: daemon, environment: environment)
    let directory = FileManager.default.temporaryDirectory
    let outputURL = directory.appendingPathComponent("jobctl-out-\(UUID())")
    let errorURL = directory.appendingPathComponent("jobctl-err-\(UUID())")
    _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outputURL)
        try? FileManager.default.removeItem(at: errorURL)
    }
    process.standardOutput = try FileHandle(forWritingTo: outputURL)
    process.standardError = try FileHandle(forWritingTo: errorURL)
    try process.run()
    process.waitUntilExit()
    return JobctlResult(
        status: process.terminationStatus, output: try Data(contentsOf: outputURL),
        error: String(decoding: try Data(contentsOf: errorURL), as: UTF8.self))
}
