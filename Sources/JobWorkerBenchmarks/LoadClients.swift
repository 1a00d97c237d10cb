import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI

/// `JobWorkerBenchmarks load-clients PORT DIRECTORY SECONDS OUTPUT_JOB POLLED_JOB STREAMERS`: runs,
/// for SECONDS, 2 `load-client start` and 1 `load-client status` processes in one login session,
/// and STREAMERS `load-client stream` processes in another (see `runStreamClients`), and prints
/// what they printed.
///
/// Two sessions, because with the kernel's autogroup scheduling each session gets a fair share
/// of the CPUs: in one, twenty streaming clients decrypting at full speed would starve the
/// probes' own processes, and the probes would measure their own wait for a CPU rather than the
/// server (in production, the streaming clients are on other machines).
func runLoadClients(_ arguments: [String]) async throws {
    guard arguments.count == 6, let streamers = Int(arguments[5]) else {
        fatalError("usage: JobWorkerBenchmarks load-clients PORT DIRECTORY SECONDS OUTPUT_JOB POLLED_JOB STREAMERS")
    }
    let (port, directory, seconds) = (arguments[0], arguments[1], arguments[2])
    // JOBWORKER_LOAD_PROBES=status (say) runs other probes, to tell their effects apart.
    let mix = ProcessInfo.processInfo.environment["JOBWORKER_LOAD_PROBES"]?.split(separator: ",").map(String.init)
    let probes = (mix ?? ["start", "start", "status"]).map { [$0, port, directory, seconds, arguments[4]] }
    let streams = Array(repeating: ["stream", port, directory, seconds, arguments[3]], count: streamers)
    let printed = try await withThrowingTaskGroup(of: String.self) { group in
        for clients in [probes, streams] where !clients.isEmpty {
            group.addTask {
                try await runClientProcess(
                    ["load-session"] + clients.map { $0.joined(separator: ",") }, directory: directory)
            }
        }
        return try await group.reduce("", +)
    }
    print(printed, terminator: "")
}

/// `JobWorkerBenchmarks load-session CLIENT...`: in a session of its own, runs one `load-client`
/// process per CLIENT (its arguments joined by commas) and prints what they printed.
func runLoadSession(_ arguments: [String]) async throws {
    startSession()
    let directory = arguments.first.map { $0.split(separator: ",")[2] }.map(String.init) ?? "/tmp"
    let printed = try await withThrowingTaskGroup(of: String.self) { group in
        for client in arguments {
            group.addTask {
                try await runClientProcess(
                    ["load-client"] + client.split(separator: ",").map(String.init), directory: directory)
            }
        }
        return try await group.reduce("", +)
    }
    print(printed, terminator: "")
}

/// `JobWorkerBenchmarks load-client ROLE PORT DIRECTORY SECONDS JOB`, one client for SECONDS:
/// - `start`: starts /bin/true and follows its output to the end, back to back; prints "start NS"
///   for each StartJob round trip.
/// - `status`: GetJobStatus of JOB back to back; prints "status NS" for each.
/// - `stream`: streams JOB's whole output over and over; prints "streamed BYTES".
/// - `follow`: streams JOB's output once, live; prints "follow BYTES FIRST LAST", when the first
///   and the last byte arrived (wall-clock nanoseconds).
func runLoadClient(_ arguments: [String]) async throws {
    guard arguments.count == 5, let port = Int(arguments[1]), let seconds = Int(arguments[3]) else {
        fatalError("usage: JobWorkerBenchmarks load-client ROLE PORT DIRECTORY SECONDS JOB")
    }
    let (role, job) = (arguments[0], arguments[4])
    let credentials = try benchCredentials(in: arguments[2])
    let transport = try TLSClientTransport.make(
        to: HostAndPort(host: "127.0.0.1", port: port), credentials: credentials)
    let clock = ContinuousClock()
    var lines = ""
    try await withGRPCClient(transport: transport) { grpcClient in
        let jobs = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
        _ = try await jobs.listJobs(.init())  // connection and TLS handshake out of the way
        let deadline = clock.now + .seconds(seconds)
        var streamed = 0
        while clock.now < deadline {
            let began = clock.now
            switch role {
            case "start":
                let id = try await jobs.startJob(measuredStartRequest).status.id
                lines += "start \((clock.now - began).nanoseconds)\n"
                if clock.now - began > .milliseconds(50) {
                    lines += "slow start \(WallClockTime.now.nanosecondsSince1970) \((clock.now - began).nanoseconds)\n"
                }
                try await jobs.streamJobOutput(.with { $0.id = id }) { for try await _ in $0.messages {} }
            case "status":
                _ = try await jobs.getJobStatus(.with { $0.id = job })
                lines += "status \((clock.now - began).nanoseconds)\n"
                if clock.now - began > .milliseconds(50) {
                    lines +=
                        "slow status \(WallClockTime.now.nanosecondsSince1970) \((clock.now - began).nanoseconds)\n"
                }
            case "follow":
                // Once: when the first and the last byte arrived (wall clock, as the job's times).
                let (bytes, first) = try await jobs.streamJobOutput(.with { $0.id = job }) { response in
                    var (bytes, first): (Int, Int64?) = (0, nil)
                    for try await message in response.messages {
                        if first == nil { first = WallClockTime.now.nanosecondsSince1970 }
                        bytes += message.data.count
                    }
                    return (bytes, first)
                }
                lines += "follow \(bytes) \(first ?? 0) \(WallClockTime.now.nanosecondsSince1970)\n"
                return
            default:
                streamed += try await jobs.streamJobOutput(.with { $0.id = job }) { response in
                    var bytes = 0
                    for try await message in response.messages { bytes += message.data.count }
                    return bytes
                }
            }
        }
        if role == "stream" { lines += "streamed \(streamed)\n" }
    }
    print(lines, terminator: "")
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
