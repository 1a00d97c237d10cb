import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI

// The API's clients, each run as a process of its own as jobctl is, so that the server's process
// does only the server's work.

/// The limits of every measured /bin/true start, through the library and through the API alike:
/// all four kinds, so that each start writes them to the job's cgroup.
let measuredStartLimits = ResourceLimits(
    cpuMillis: 500, memoryBytes: 256 << 20, ioWriteBytesPerSecond: 100 << 20, maxProcesses: 100)

/// A StartJob request for /bin/true with `measuredStartLimits`.
let measuredStartRequest = Jobworker_V1_StartJobRequest.with {
    $0.command = "/bin/true"
    $0.limits = Jobworker_V1_ResourceLimits(measuredStartLimits)
}

/// The credentials that `benchmarkAPI` wrote to `directory`.
func benchCredentials(in directory: String) throws -> ClientCredentials {
    ClientCredentials(
        certificateChainPEM: try String(contentsOfFile: directory + "/bench.pem", encoding: .utf8),
        privateKeyPEM: try String(contentsOfFile: directory + "/bench-key.pem", encoding: .utf8),
        serverCAPEM: try String(contentsOfFile: directory + "/ca.pem", encoding: .utf8))
}

/// `JobWorkerBenchmarks stream-client PORT DIRECTORY JOB CLIENTS`: CLIENTS concurrent clients,
/// each on a connection of its own, stream the job's whole output; prints the bytes received
/// and the seconds taken.
func runStreamClient(_ arguments: [String]) async throws {
    guard arguments.count == 4, let port = Int(arguments[0]), let clients = Int(arguments[3]) else {
        fatalError("usage: JobWorkerBenchmarks stream-client PORT DIRECTORY JOB CLIENTS")
    }
    let credentials = try benchCredentials(in: arguments[1])
    let job = arguments[2]
    let address = HostAndPort(host: "127.0.0.1", port: port)
    let clock = ContinuousClock()
    let began = clock.now
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<clients {
            group.addTask {
                try await withGRPCClient(transport: TLSClientTransport.make(to: address, credentials: credentials)) {
                    grpcClient in
                    try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).streamJobOutput(
                        .with { $0.id = job }
                    ) { response in
                        var bytes = 0
                        for try await message in response.messages { bytes += message.data.count }
                        return bytes
                    }
                }
            }
        }
        return try await group.reduce(0, +)
    }
    let elapsed = clock.now - began
    print(total, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// `JobWorkerBenchmarks start-client PORT DIRECTORY COUNT`: the StartJob client. It starts /bin/true COUNT times over mutual TLS with the certificates
/// in DIRECTORY (bench.pem, bench-key.pem, ca.pem), follows each job's (empty) output to its end
/// before the next start, as the library measurement waits for each job, and prints each start's
/// round trip in nanoseconds, one per line.
func runStartClient(_ arguments: [String]) async throws {
    guard arguments.count == 3, let port = Int(arguments[0]), let count = Int(arguments[2]) else {
        fatalError("usage: JobWorkerBenchmarks start-client PORT DIRECTORY COUNT")
    }
    startSession()  // as jobctl runs from a user's shell (see `runStreamClients`)
    let credentials = try benchCredentials(in: arguments[1])
    let transport = try TLSClientTransport.make(
        to: HostAndPort(host: "127.0.0.1", port: port), credentials: credentials)
    var lines = ""
    try await withGRPCClient(transport: transport) { grpcClient in
        let jobs = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
        _ = try await jobs.listJobs(.init())  // connection and TLS handshake out of the way
        let clock = ContinuousClock()
        for _ in 0..<count {
            let began = clock.now
            let id = try await jobs.startJob(measuredStartRequest).status.id
            let elapsed = clock.now - began
            lines += "\(elapsed.nanoseconds)\n"
            try await jobs.streamJobOutput(.with { $0.id = id }) { response in
                for try await _ in response.messages {}
            }
        }
    }
    print(lines, terminator: "")
}

/// Runs this program with `arguments` as a child process, without blocking a thread the server
/// needs while it runs; returns what it printed.
func runClientProcess(_ arguments: [String], directory: String) async throws -> String {
    let output = directory + "/client-\(UUID()).out"
    _ = FileManager.default.createFile(atPath: output, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    process.arguments = arguments
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
    await withCheckedContinuation { continuation in
        process.terminationHandler = { _ in continuation.resume() }
        do { try process.run() } catch { continuation.resume() }
    }
    precondition(process.terminationStatus == 0, "\(arguments[0]) failed")
    return try String(contentsOfFile: output, encoding: .utf8)
}

/// StartJob round trips measured by `start-client`.
func measureStartsFromAnotherProcess(port: Int, directory: String, count: Int) async throws -> Samples {
    let printed = try await runClientProcess(["start-client", "\(port)", directory, "\(count)"], directory: directory)
    var samples = Samples()
    for line in printed.split(separator: "\n") { samples.values.append(.nanoseconds(Int64(line)!)) }
    return samples
}

/// MB/s of `clients` concurrent streams of the job's output, each from a `stream-client` process
/// of its own (as `clients` jobctl processes would), from the first start to the last exit, as
/// `stream-clients` measured it.
func measureStreamingFromOtherProcesses(port: Int, directory: String, job: String, clients: Int) async throws
    -> (megabytesPerSecond: Double, bytes: Int)
{
    let printed = try await runClientProcess(
        ["stream-clients", "\(port)", directory, job, "\(clients)"], directory: directory)
    let fields = printed.split(whereSeparator: \.isWhitespace)
    let bytes = Int(fields[0])!
    return (Double(bytes) / Double(fields[1])! / 1e6, bytes)
}

/// Moves this process into a new session. Foundation's `Process` makes each child the leader of
/// a process group, which may not start a session: the child first joins its parent's group.
func startSession() {
    if setsid() == -1 {
        precondition(setpgid(0, getpgid(getppid())) == 0, "setpgid: \(String(cString: strerror(errno)))")
        precondition(setsid() != -1, "setsid: \(String(cString: strerror(errno)))")
    }
}

/// `JobWorkerBenchmarks stream-clients PORT DIRECTORY JOB CLIENTS`: runs CLIENTS `stream-client`
/// processes at once in a login session of their own, and prints the bytes they received and the
/// seconds from the first start to the last exit.
///
/// The server runs in the benchmark's session, as jobworkerd runs in its own under a service
/// manager; its clients come from another, as jobctl runs from a user's shell. With the kernel's
/// autogroup scheduling, each session gets a fair share of the CPUs as a whole, whatever the
/// number of its threads: twenty clients spawned into the server's own session would otherwise
/// take twenty shares of two cores against the server's two.
func runStreamClients(_ arguments: [String]) async throws {
    guard arguments.count == 4, let clients = Int(arguments[3]) else {
        fatalError("usage: JobWorkerBenchmarks stream-clients PORT DIRECTORY JOB CLIENTS")
    }
    startSession()
    let directory = arguments[1]
    let clock = ContinuousClock()
    let began = clock.now
    let bytes = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<clients {
            group.addTask {
                let printed = try await runClientProcess(
                    ["stream-client", arguments[0], directory, arguments[2], "1"], directory: directory)
                return Int(printed.split(whereSeparator: \.isWhitespace)[0])!
            }
        }
        return try await group.reduce(0, +)
    }
    print(bytes, (clock.now - began).seconds)
}
