import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI

#if canImport(Glibc)
    import Glibc
#endif

/// The job records (issue 7): ListJobs with 10,000 jobs in history, and the time a restarted
/// worker takes to serve again with 1,000 jobs in history and 50 running jobs to adopt.
///
/// The jobs are /bin/true (and /bin/sleep for the running ones) started by a worker without
/// cgroups or namespaces: the records are the same, and 10,000 starts take seconds.
func benchmarkRecords(
    directory: String, credentials: ClientCredentials, serverCertificate: IssuedCertificate, caPEM: String
)
    async throws
{
    func configuration(_ name: String) -> WorkerConfiguration {
        var configuration = benchmarkConfiguration(stateDirectory: directory + "/" + name)
        configuration.resourceControl = .disabled
        configuration.isolation = .none
        configuration.policy.maximumRunningJobs = 1000
        return configuration
    }
    func startMany(_ worker: Worker, count: Int, command: String = "/bin/true", arguments: [String] = [])
        async throws -> [JobID]
    {
        try await withThrowingTaskGroup(of: JobID.self) { group in
            var ids: [JobID] = []
            for index in 0..<count {
                if index >= 16, let id = try await group.next() { ids.append(id) }  // 16 starts at a time
                group.addTask { try await worker.start(command: command, arguments: arguments, owner: "bench").id }
            }
            for try await id in group { ids.append(id) }
            return ids
        }
    }

    // ListJobs with 10,000 jobs in history, over mutual TLS as a client sees it.
    let history = try await Worker(configuration: configuration("history"))
    for id in try await startMany(history, count: 10_000) { _ = try await history.waitUntilEnded(id) }
    var listLatency = Samples()
    var listed = 0
    try await serve(history, serverCertificate: serverCertificate, caPEM: caPEM) { address in
        try await withGRPCClient(transport: TLSClientTransport.make(to: address, credentials: credentials)) {
            grpcClient in
            let jobs = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
            var options = CallOptions.defaults
            options.maxResponseMessageBytes = 64 << 20
            for _ in 0..<50 {
                try await listLatency.measure { listed = try await listAll(jobs, options: options).count }
            }
        }
    }
    precondition(listed == 10_000, "listed \(listed)")
    await history.shutdown(gracePeriod: .zero)

    // A restart with 1,000 jobs in history and 50 running: a worker in a child process starts
    // them and is killed (SIGKILL), then a new worker with the same state directory and cgroup
    // parent starts, as jobworkerd would after a crash, and adopts the 50.
    let restartDirectory = directory + "/restart"
    let parent = "jobworker-bench-restart-\(getpid())"
    try await runKilledWriter(directory: restartDirectory, cgroupParent: parent)
    let clock = ContinuousClock()
    let began = clock.now
    var restartConfiguration = benchmarkConfiguration(stateDirectory: restartDirectory)
    restartConfiguration.cgroupParentName = parent
    let second = try await Worker(configuration: restartConfiguration)
    var restart = Duration.zero
    try await serve(second, serverCertificate: serverCertificate, caPEM: caPEM) { address in
        try await withGRPCClient(transport: TLSClientTransport.make(to: address, credentials: credentials)) {
            grpcClient in
            let jobs = try await listAll(Jobworker_V1_JobWorker.Client(wrapping: grpcClient), options: .defaults)
            restart = clock.now - began
            precondition(jobs.count == 1050, "listed \(jobs.count) after the restart")
            precondition(jobs.filter { $0.state == .running }.count == 50, "not 50 adopted")
        }
    }
    await second.shutdown(gracePeriod: .zero)

    print("\n| job records | p50 ms | p99 ms |")
    print("|---|---|---|")
    row("ListJobs over mTLS, all 10,000 jobs in history, in pages of 1,000", listLatency.summary)
    print(
        String(
            format:
                "| restart with 1,000 jobs in history and 50 running (adopted), until a ListJobs answered | %.1f | |",
            restart.milliseconds))
}

/// `JobWorkerBenchmarks records-writer DIRECTORY CGROUP_PARENT`: starts 1,000 jobs that end and
/// 50 that keep running (as jobworkerd would, with cgroups and namespaces), then kills itself
/// with SIGKILL.
func runRecordsWriter(_ arguments: [String]) async throws -> Never {
    var configuration = benchmarkConfiguration(stateDirectory: arguments[0])
    configuration.cgroupParentName = arguments[1]
    let worker = try await Worker(configuration: configuration)
    for _ in 0..<1000 {
        _ = try await worker.waitUntilEnded(try await worker.start(command: "/bin/true", owner: "bench").id)
    }
    for _ in 0..<50 {
        _ = try await worker.start(command: "/bin/sleep", arguments: ["1000"], owner: "bench")
    }
    kill(getpid(), SIGKILL)
    fatalError("SIGKILL did not end the process")
}

/// Runs `records-writer` and waits (without blocking a thread) until SIGKILL has ended it.
private func runKilledWriter(directory: String, cgroupParent: String) async throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    process.arguments = ["records-writer", directory, cgroupParent]
    process.standardError = FileHandle.nullDevice
    await withCheckedContinuation { continuation in
        process.terminationHandler = { _ in continuation.resume() }
        do { try process.run() } catch { continuation.resume() }
    }
    precondition(
        process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL,
        "records-writer did not end with SIGKILL")
}

/// Serves `worker` over mutual TLS on a free loopback port for the duration of `body`.
private func serve(
    _ worker: Worker, serverCertificate: IssuedCertificate, caPEM: String,
    _ body: (HostAndPort) async throws -> Void
) async throws {
    let transport = try TLSServerTransport(
        host: "127.0.0.1", port: 0, certificateChainPEM: try serverCertificate.certificatePEM,
        privateKeyPEM: serverCertificate.privateKeyPEM, clientCAPEM: caPEM)
    try await withGRPCServer(
        transport: transport, services: [JobWorkerService(worker: worker)],
        interceptors: [AuthorizationInterceptor(resolver: transport.identityResolver)]
    ) { server in
        defer { server.beginGracefulShutdown() }
        let port = await transport.listeningAddress?.ipv4?.port ?? 0
        try await body(HostAndPort(host: "127.0.0.1", port: port))
    }
}

/// Every job, a page of 1,000 at a time, as `jobctl list` fetches them.
private func listAll(_ jobs: Jobworker_V1_JobWorker.Client<some ClientTransport>, options: CallOptions) async throws
    -> [Jobworker_V1_JobStatus]
{
    var all: [Jobworker_V1_JobStatus] = []
    var request = Jobworker_V1_ListJobsRequest.with { $0.pageSize = 1000 }
    while true {
        let page = try await jobs.listJobs(request, options: options)
        all += page.jobs
        guard !page.nextPageToken.isEmpty else { return all }
        request.pageToken = page.nextPageToken
    }
}
