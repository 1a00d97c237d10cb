import ArgumentParser
import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI
import Logging
import NIOCore
import ServiceLifecycle

/// `jobworkerd [serve]`: the API server. SIGTERM or SIGINT: stop accepting, finish the calls in
/// flight, stop every running job with the grace period, exit 0.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the jobworker API (the default command).")

    @Option(
        help:
            "A YAML file of settings, one key per flag (max-cpu: 4); flags win over JOBWORKERD_* variables, which win over the file (default: /etc/jobworker/jobworkerd.yaml, if it exists; env JOBWORKERD_CONFIG)."
    )
    var config: String?

    @Option(
        help:
            "Log format: text, or json (one object a line: time, level, message and fields such as job, method, caller); default json when stdout is not a terminal."
    )
    var logFormat: String?

    @Option(
        help:
            "The operations listener (plain HTTP: /healthz, /readyz, /metrics), HOST:PORT (port 0: any free port, printed at startup), or off."
    )
    var opsListen = "127.0.0.1:9464"

    @Option(help: "Address and port to listen on (port 0: any free port, printed at startup).")
    var listen = "127.0.0.1:50051"

    @Option(help: "Where job output and records are kept (created with mode 0700).")
    var stateDir = "/var/lib/jobworker"

    @Option(help: "The server's certificate chain (PEM, EKU serverAuth).")
    var tlsCert: String?

    @Option(help: "The server's private key (PEM).")
    var tlsKey: String?

    @Option(help: "The CA whose client certificates are accepted (PEM); no other is trusted.")
    var clientCa: String?

    @Flag(
        help:
            "Development: create (if missing) a CA, server and admin/user/viewer client certificates under <state-dir>/dev-pki, and use them."
    )
    var dev = false

    @Option(help: "CPU for jobs that ask for none: millicores (500m) or CPUs (0.5, 2).")
    var defaultCpu = "1"
    @Option(help: "Memory for jobs that ask for none (256M, 1Gi).")
    var defaultMemory = "1Gi"
    @Option(help: "Processes for jobs that ask for no limit.")
    var defaultMaxProcesses: UInt32 = 1024
    @Option(help: "Most CPU a job may ask for (default: the host's online CPUs; 0: no ceiling).")
    var maxCpu: String?
    @Option(
        help: "Most memory a job may ask for (default: MemTotal, or the server's cgroup limit if lower; 0: no ceiling)."
    )
    var maxMemory: String?
    @Option(help: "Most disk reads per second a job may ask for, in bytes (0: no ceiling).")
    var maxIoRead = "0"
    @Option(help: "Most disk writes per second a job may ask for, in bytes (0: no ceiling).")
    var maxIoWrite = "0"
    @Option(
        help:
            "Most processes a job may ask for (default: the kernel's pid_max, or the server's pids limit; 0: no ceiling)."
    )
    var maxProcesses: UInt32?
    @Option(
        name: .customLong("io-device"),
        help:
            "A whole disk IO limits apply to, e.g. /dev/vda (repeatable; default: the disks backing / and the state directory)."
    )
    var ioDevices: [String] = []
    @Option(help: "Jobs that may run at once; StartJob beyond it is RESOURCE_EXHAUSTED.")
    var maxRunningJobs = 256
    @Option(
        help:
            "Jobs one owner may run at once (an admin's own jobs count too); StartJob beyond it is RESOURCE_EXHAUSTED (0: no limit)."
    )
    var maxRunningJobsPerOwner = 64
    @Option(
        help:
            "Starts per second one owner may make, after a burst of --start-burst-per-owner; beyond, StartJob is RESOURCE_EXHAUSTED (0: no limit)."
    )
    var startRatePerOwner: Double = 32
    @Option(help: "Starts one owner may make at once before --start-rate-per-owner applies.")
    var startBurstPerOwner = 64
    @Option(
        help:
            "Free space the state directory's file system must keep, as a size (2Gi) or a share (10%); below it StartJob is RESOURCE_EXHAUSTED (default: 1Gi or 5%, whichever is smaller; 0: no floor)."
    )
    var minFreeDisk: String?
    @Option(
        help:
            "Most output a job's log keeps (1Gi); past it the job keeps running and further bytes are dropped and counted (0: no cap)."
    )
    var maxOutputBytes = "1Gi"
    @Option(help: "The time limit of jobs whose start gives none: 30s, 5m, 2h, 1d (0: none).")
    var defaultTimeout = "0"
    @Option(help: "The longest time limit a start may give (0: no bound); a start above it is INVALID_ARGUMENT.")
    var maxTimeout = "0"
    @Option(help: "Seconds between SIGTERM and SIGKILL when a stop request gives none.")
    var gracePeriod = 10
    @Option(help: "Delete finished jobs and their output this long after they ended: 7d, 12h, 30m (0: keep them).")
    var retainFor = "7d"
    @Option(
        help:
            "Per owner: delete the owner's oldest finished jobs while the disk space of their output exceeds this size (0: no limit)."
    )
    var retainOutput = "10Gi"
    @Flag(
        help:
            "On SIGTERM/SIGINT, stop every running job (with its grace period) before exiting, instead of leaving them running for the next jobworkerd on this state directory to adopt."
    )
    var stopJobsOnExit = false
    /// Leaving jobs running is the default now; the flag that asked for it is still accepted.
    @Flag(help: .hidden) var keepJobsOnShutdown = false
    @Option(
        help:
            "On SIGTERM/SIGINT: how long calls in flight may take to finish before the server closes their connections (output streams, waits and watches end at once, with UNAVAILABLE; 0: no wait)."
    )
    var shutdownGrace = "10s"
    @Option(
        help:
            "On SIGTERM/SIGINT: how long the server goes on answering, NOT_SERVING in its health, before it stops accepting calls (time for load balancers to notice)."
    )
    var shutdownDelay = "0"
    @Option(
        help:
            "The cgroup that holds the job cgroups, one per server on a host: at startup a server removes what a previous run left there, and a second server on the same one is refused."
    )
    var cgroupParent = "jobworker"
    @Option(
        help:
            "The uids (and equal gids) jobs get one each while they run: FIRST-LAST, at least one id, overlapping no user, group or subordinate range of this host."
    )
    var jobUids = "\(JobUsers.defaultRange.lowerBound)-\(JobUsers.defaultRange.upperBound)"
    @Option(
        help:
            "Instead of a uid per job, run every job as this user: NAME or UID, optionally :GROUP or :GID (default: the user's group). Weaker: jobs then share what the kernel keeps per uid."
    )
    var jobUser: String?
    @Option(
        help:
            "The jobs' system-call filter: on (Docker's default profile: keyrings, BPF, mounts, namespaces, io_uring… fail with EPERM) or off (debugging only)."
    )
    var seccomp = "on"
    @Flag(help: "Let jobs use io_uring (refused by the system-call filter otherwise).")
    var allowIoUring = false
    @Option(
        help:
            "What jobs see of the host's files: private (read-only host, own /tmp, /dev/shm, /var/tmp, /run and /dev, server files hidden) or host (the host's, as the server sees it: debugging only)."
    )
    var jobFilesystem = "private"
    @Option(help: "Size cap of each job's private /tmp and /dev/shm (in memory, counted against its memory limit).")
    var jobTmpfsSize = "256Mi"
    @Option(help: "Where jobs' /var/tmp directories are made, on disk (default: <state-dir>/scratch).")
    var jobScratchDir: String?
    @Option(
        name: .customLong("job-hide"),
        help: "A host path no job may see (repeatable), beyond the server's files, /home, /root and /sys/fs/cgroup.")
    var jobHide: [String] = []
    @Option(
        name: .customLong("job-bind"),
        help:
            "A host path every job sees: HOST[:JOB][:rw] (repeatable; read-only unless :rw). JOB must exist on the host."
    )
    var jobBind: [String] = []
    @Option(
        help:
            "Largest request message (StartJob's; every other method's is 64Ki): beyond it the call is RESOURCE_EXHAUSTED."
    )
    var maxRequestBytes = "4Mi"
    @Option(help: "Time a connection has for its TLS handshake and HTTP/2 preface before it is closed.")
    var handshakeTimeout = "10s"
    @Option(help: "Close a connection with no open call after this long, with GOAWAY (0: never).")
    var idleTimeout = "5m"
    @Option(
        help:
            "Send GOAWAY to a connection this old: it takes no new calls, those open finish (0: never)."
    )
    var maxConnectionAge = "2h"
    @Option(help: "Connections open at once; beyond, new ones are closed as they are accepted.")
    var maxConnections = 1024
    @Option(help: "Connections open at once from one IP address; beyond, new ones are closed as they are accepted.")
    var maxConnectionsPerAddress = 64
    @Option(help: "Calls open at once on one connection.")
    var maxStreamsPerConnection = 100
    @Option(help: "Calls one identity may have open at once, over all its connections; beyond, RESOURCE_EXHAUSTED.")
    var maxStreamsPerIdentity = 128

    /// Tests: once listening, wait until a writer opens this FIFO before the worker is made and
    /// adopts the previous run's jobs, so that a test can watch the starting phase.
    @Option(help: .hidden) var testHoldAdoption: String?

    func validate() throws {
        if opsListen != "off", HostAndPort(opsListen) == nil {
            throw ValidationError("--ops-listen: \"\(opsListen)\" is neither HOST:PORT nor off")
        }
        if let logFormat, !["text", "json"].contains(logFormat) {
            throw ValidationError("--log-format: \"\(logFormat)\" is neither text nor json")
        }
        if stopJobsOnExit && keepJobsOnShutdown {
            throw ValidationError("--stop-jobs-on-exit and --keep-jobs-on-shutdown contradict each other")
        }
        for (flag, value) in [("--shutdown-grace", shutdownGrace), ("--shutdown-delay", shutdownDelay)] {
            _ = try Self.duration(value, flag: flag)
        }
        guard dev || (tlsCert != nil && tlsKey != nil && clientCa != nil) else {
            throw ValidationError("give --tls-cert, --tls-key and --client-ca, or --dev for a development PKI")
        }
        for (flag, value) in [("--default-cpu", defaultCpu), ("--max-cpu", maxCpu ?? "0")]
        where Quantity.cpuMillis(value) == nil {
            throw ValidationError("\(flag): \"\(value)\" is not a CPU amount (500m, 0.5, 2)")
        }
        for (flag, value) in [
            ("--default-memory", defaultMemory), ("--max-memory", maxMemory ?? "0"), ("--max-io-read", maxIoRead),
            ("--max-io-write", maxIoWrite),
        ]
        where Quantity.bytes(value) == nil {
            throw ValidationError("\(flag): \"\(value)\" is not a size (256M, 1Gi)")
        }
        guard !cgroupParent.isEmpty, !cgroupParent.contains("/"), cgroupParent != ".", cgroupParent != ".." else {
            throw ValidationError("--cgroup-parent: \"\(cgroupParent)\" is not a cgroup name")
        }
        _ = try Self.retentionAge(retainFor)
        guard Quantity.bytes(retainOutput) != nil else {
            throw ValidationError("--retain-output: \"\(retainOutput)\" is not a size (10Gi, 500M, 0)")
        }
        if let jobUser { _ = try JobUser.parse(jobUser) }
        let uids = try Self.uidRange(jobUids)
        if jobUser == nil, let overlap = JobUsers.overlap(of: uids) {
            throw ValidationError(
                "--job-uids: \(jobUids) overlaps \(overlap): choose a range no user, group or subordinate id range uses"
            )
        }
        guard jobFilesystem == "private" || jobFilesystem == "host" else {
            throw ValidationError("--job-filesystem: \"\(jobFilesystem)\" is neither private nor host")
        }
        guard seccomp == "on" || seccomp == "off" else {
            throw ValidationError("--seccomp: \"\(seccomp)\" is neither on nor off")
        }
        guard Quantity.bytes(maxOutputBytes) != nil else {
            throw ValidationError("--max-output-bytes: \"\(maxOutputBytes)\" is not a size (1Gi, 500M, 0)")
        }
        guard let size = Quantity.bytes(jobTmpfsSize), size >= 1 << 20 else {
            throw ValidationError("--job-tmpfs-size: \"\(jobTmpfsSize)\" is not a size of at least 1Mi (256Mi, 1Gi)")
        }
        for bind in jobBind where JobBind(parsing: bind) == nil {
            throw ValidationError("--job-bind: \"\(bind)\" is not HOST[:JOB][:rw] with absolute paths")
        }
        for path in jobHide + [jobScratchDir].compactMap({ $0 }) where !path.hasPrefix("/") {
            throw ValidationError("\(path): give an absolute path")
        }
        guard let requestBytes = Quantity.bytes(maxRequestBytes), requestBytes >= 64 << 10, requestBytes <= 1 << 30
        else {
            throw ValidationError("--max-request-bytes: \"\(maxRequestBytes)\" is not a size from 64Ki to 1Gi")
        }
        _ = try connectionLimits()
        let timeouts = (
            try Self.duration(defaultTimeout, flag: "--default-timeout"),
            try Self.duration(maxTimeout, flag: "--max-timeout")
        )
        if let fallback = timeouts.0, let maximum = timeouts.1, fallback > maximum {
            throw ValidationError("--default-timeout \(defaultTimeout) is over --max-timeout \(maxTimeout)")
        }
        guard HostAndPort(listen) != nil else {
            throw ValidationError("--listen: \"\(listen)\" is not HOST:PORT")
        }
    }

    /// The defaults and ceilings of the flags: a ceiling not given is the host's capacity, and
    /// a default flag not given is lowered to its ceiling on a host smaller than the default.
    func resourcePolicy(host: HostCapacity) -> ResourcePolicy {
        let hostSized = ResourcePolicy.hostSized(
            defaults: ResourceLimits(
                cpuMillis: Quantity.cpuMillis(defaultCpu)!, memoryBytes: Quantity.bytes(defaultMemory)!,
                maxProcesses: defaultMaxProcesses),
            capacity: host)
        var policy = hostSized
        if let maxCpu { policy.ceilings.cpuMillis = Quantity.cpuMillis(maxCpu)! }
        if let maxMemory { policy.ceilings.memoryBytes = Quantity.bytes(maxMemory)! }
        if let maxProcesses { policy.ceilings.maxProcesses = maxProcesses }
        policy.ceilings.ioReadBytesPerSecond = Quantity.bytes(maxIoRead)!
        policy.ceilings.ioWriteBytesPerSecond = Quantity.bytes(maxIoWrite)!
        return policy
    }

    /// The worker's limits, ceilings, quotas and time limits, as the flags give them: at
    /// startup, and again at each reload (`SettingsReload`).
    func workerPolicy(host: HostCapacity) throws -> WorkerPolicy {
        var policy = WorkerPolicy()
        policy.defaultGracePeriod = .seconds(gracePeriod)
        policy.defaultTimeout = try Self.duration(defaultTimeout, flag: "--default-timeout")
        policy.maximumTimeout = try Self.duration(maxTimeout, flag: "--max-timeout")
        policy.maximumRunningJobs = maxRunningJobs
        policy.maximumRunningJobsPerOwner = maxRunningJobsPerOwner <= 0 ? nil : maxRunningJobsPerOwner
        policy.startRatePerOwner =
            startRatePerOwner <= 0 ? nil : StartRate(perSecond: startRatePerOwner, burst: max(1, startBurstPerOwner))
        let retainedOutput = Quantity.bytes(retainOutput)!
        policy.retention = RetentionPolicy(
            maximumAge: try Self.retentionAge(retainFor), maximumOutputBytes: retainedOutput == 0 ? nil : retainedOutput
        )
        policy.minimumFreeDisk = try Self.diskSpaceFloor(minFreeDisk)
        let outputCap = Quantity.bytes(maxOutputBytes)!
        policy.maximumOutputBytes = outputCap == 0 ? nil : outputCap
        policy.resourcePolicy = resourcePolicy(host: host)
        return policy
    }

    /// The connection flags.
    func connectionLimits() throws -> ConnectionLimits {
        var limits = ConnectionLimits()
        guard let handshake = try Self.duration(handshakeTimeout, flag: "--handshake-timeout") else {
            throw ValidationError("--handshake-timeout: give a time (10s); connections need one")
        }
        limits.handshakeTimeout = handshake
        limits.idleTimeout = try Self.duration(idleTimeout, flag: "--idle-timeout")
        limits.maximumAge = try Self.duration(maxConnectionAge, flag: "--max-connection-age")
        for (flag, value) in [
            ("--max-connections", maxConnections), ("--max-connections-per-address", maxConnectionsPerAddress),
            ("--max-streams-per-connection", maxStreamsPerConnection),
            ("--max-streams-per-identity", maxStreamsPerIdentity),
        ] where value < 1 {
            throw ValidationError("\(flag): give at least 1")
        }
        limits.maximumConnections = maxConnections
        limits.maximumConnectionsPerAddress = maxConnectionsPerAddress
        limits.maximumStreamsPerConnection = maxStreamsPerConnection
        limits.maximumRequestBytes = Int(Quantity.bytes(maxRequestBytes) ?? 4 << 20)
        return limits
    }

    /// "10s", "5m", "2h", "1d", "500ms"; "0" is none (nil).
    static func duration(_ text: String, flag: String) throws -> Duration? {
        if text == "0" { return nil }
        if text.hasSuffix("ms"), let count = Int64(text.dropLast(2)), count > 0 { return .milliseconds(count) }
        let units: [Character: Int64] = ["d": 86_400, "h": 3_600, "m": 60, "s": 1]
        guard let unit = text.last, let seconds = units[unit], let count = Int64(text.dropLast()), count > 0,
            case let (total, overflow) = count.multipliedReportingOverflow(by: seconds), !overflow
        else {
            throw ValidationError("\(flag): \"\(text)\" is not a duration (500ms, 10s, 5m, 2h, 1d, 0)")
        }
        return .seconds(total)
    }

    /// Blocks until a writer opens the FIFO at `path` (`--test-hold-adoption`).
    static func waitForWriter(of path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ValidationError("--test-hold-adoption: cannot open \(path)") }
        close(descriptor)
    }

    /// `--job-uids FIRST-LAST`.
    static func uidRange(_ text: String) throws -> ClosedRange<UInt32> {
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false).map { UInt32($0) }
        guard bounds.count == 2, let first = bounds[0], let last = bounds[1], first <= last else {
            throw ValidationError("--job-uids: \"\(text)\" is not FIRST-LAST (e.g. 1900000000-1900065535)")
        }
        return first...last
    }

    /// "7d", "12h", "30m" or "45s"; "0" is no limit (nil).
    static func retentionAge(_ text: String) throws -> Duration? {
        try duration(text, flag: "--retain-for")
    }

    /// `--min-free-disk`: a size, a share ("10%"), 0 for none, or nil for the default.
    static func diskSpaceFloor(_ text: String?) throws -> DiskSpaceFloor? {
        guard let text else { return DiskSpaceFloor() }
        if text.hasSuffix("%"), let percent = Double(text.dropLast()), (0...100).contains(percent) {
            return percent == 0 ? nil : DiskSpaceFloor(bytes: .max, fraction: percent / 100)
        }
        guard let bytes = Quantity.bytes(text) else {
            throw ValidationError("--min-free-disk: \(text) is neither a size (2Gi) nor a share (10%)")
        }
        return bytes == 0 ? nil : DiskSpaceFloor(bytes: bytes, fraction: 1)
    }

    func run() async throws {
        // A reload asked for before the server traps SIGHUP must not end it (SIGHUP's default).
        signal(SIGHUP, SIG_IGN)
        let json = logFormat == "json" || (logFormat == nil && isatty(STDOUT_FILENO) == 0)
        LoggingSystem.bootstrap { label in
            StderrLogHandler(label: label, format: json ? .json : .text)
        }
        let logger = Logger(label: "jobworkerd")
        // Before anything makes a metric: the worker and the service make theirs on first use.
        let registry = MetricsExposition.bootstrap()
        let address = HostAndPort(listen)!
        let pki = try dev ? DevelopmentPKI.ensure(in: stateDir + "/dev-pki") : nil

        var configuration = WorkerConfiguration(stateDirectory: stateDir)
        configuration.logger = logger
        configuration.policy = try workerPolicy(host: HostCapacity.measure())
        configuration.cgroupParentName = cgroupParent
        configuration.jobUsers = try jobUser.map { .fixed(try JobUser.parse($0)) } ?? .pool(Self.uidRange(jobUids))
        configuration.ioDevices = ioDevices.isEmpty ? nil : ioDevices
        configuration.systemCallFilter =
            seccomp == "off" ? .off : allowIoUring ? .standardAllowingIOUring : .standard
        configuration.jobFilesystem.isPrivate = jobFilesystem == "private"
        configuration.jobFilesystem.temporaryBytes = Quantity.bytes(jobTmpfsSize)!
        configuration.jobFilesystem.scratchDirectory = jobScratchDir
        configuration.jobFilesystem.hiddenPaths = jobHide
        configuration.jobFilesystem.binds = jobBind.compactMap(JobBind.init(parsing:))
        // The server's keys and certificates: no job sees them, wherever the operator keeps them.
        configuration.serverPaths = [tlsKey, tlsCert, clientCa].compactMap { $0 }
        // One pool of blocking-capable threads for the service's starts, stops and status reads
        // and for the worker's own background work: the event loops only move bytes.
        let blocking = BlockingWorkExecutor()
        configuration.backgroundExecutor = blocking
        // The worker is made (and adopts the jobs of the previous run) once the server listens,
        // so that health checks see it starting and the job API answers UNAVAILABLE meanwhile.
        let workers = WorkerSlot()
        let workerConfiguration = configuration
        let adoptionHold = testHoldAdoption
        // On the blocking threads: the event loops go on answering (health, UNAVAILABLE) meanwhile.
        let makeWorker: @Sendable () async throws -> Worker = {
            try await blocking.run {
                if let adoptionHold { try Self.waitForWriter(of: adoptionHold) }
                return try await Worker(configuration: workerConfiguration)
            }
        }

        let limits = try connectionLimits()
        logger.info(
            "connections: handshake \(limits.handshakeTimeout), idle \(limits.idleTimeout.map { "\($0)" } ?? "never"), age \(limits.maximumAge.map { "\($0)" } ?? "never"); at most \(limits.maximumConnections) (\(limits.maximumConnectionsPerAddress) per address), \(limits.maximumStreamsPerConnection) calls per connection, \(maxStreamsPerIdentity) per identity; requests up to \(limits.maximumRequestBytes) bytes (StartJob), 64Ki (others)"
        )
        let tlsFiles = TLSFiles(
            certificateChain: pki?.serverCertificate ?? tlsCert!, privateKey: pki?.serverKey ?? tlsKey!,
            clientCA: pki?.authority ?? clientCa!)
        let transport = TLSServerTransport(
            host: address.host, port: address.port, credentials: try tlsFiles.load(), limits: limits)
        let resolver = transport.identityResolver
        let phase = ServerPhase()
        let health = HealthService(phase: phase)
        let reflection = ReflectionService(phase: phase)
        // Health and reflection are for every client of this CA, whatever its role (they say
        // nothing about jobs); health is not audited call by call (a probe a second would drown
        // the trail), reflection is. Authorization and the call quota are the job API's.
        let jobAPI = ConditionalInterceptor<any ServerInterceptor>.Subject.only(
            services: [Jobworker_V1_JobWorker.descriptor], methods: [])
        let audited = ConditionalInterceptor<any ServerInterceptor>.Subject.only(
            services: [
                Jobworker_V1_JobWorker.descriptor, Grpc_Reflection_V1_ServerReflection.descriptor,
                Grpc_Reflection_V1alpha_ServerReflection.descriptor,
            ], methods: [])
        let streamQuota = StreamQuotaInterceptor(limit: maxStreamsPerIdentity)
        let server = GRPCServer(
            transport: transport,
            services: [
                JobWorkerService(
                    workers: workers, requestLimits: RequestLimits(startJobBytes: limits.maximumRequestBytes),
                    blocking: blocking, phase: phase),
                health, reflection.v1, reflection.v1alpha,
            ],
            interceptorPipeline: [
                .apply(RPCMetricsInterceptor(), to: .all),
                .apply(AuditInterceptor(logger: logger, resolver: resolver), to: audited),
                .apply(AuthorizationInterceptor(resolver: resolver), to: jobAPI),
                .apply(streamQuota, to: jobAPI),
            ])
        let notifier = SystemdNotifier.fromEnvironment(logger: logger)
        let service = APIServerService(
            server: server, workers: workers, makeWorker: makeWorker, blocking: blocking, phase: phase,
            notifier: notifier,
            shutdownGrace: try Self.duration(shutdownGrace, flag: "--shutdown-grace") ?? .zero,
            shutdownDelay: try Self.duration(shutdownDelay, flag: "--shutdown-delay") ?? .zero,
            leavesJobsRunning: !stopJobsOnExit, logger: logger, tlsFiles: tlsFiles,
            credentials: transport.credentials, settings: SettingsReload.start(),
            streamQuota: streamQuota,
            // For `jobworkerd reload`: which process serves this state directory.
            pidFile: stateDir + "/jobworkerd.pid"
        ) {
            // nil: serve() could not bind, and says why.
            guard let bound = await transport.listeningAddress else { return false }
            let port = bound.ipv4?.port ?? bound.ipv6?.port ?? address.port
            let listening = HostAndPort(host: address.host, port: port)
            print("jobworkerd listening on \(listening)")
            if let pki { pki.printInstructions(address: listening) }
            fflush(nil)  // scripts read the port: flush now, not at exit
            return true
        }
        var operations: (any Channel)?
        if let opsAddress = HostAndPort(opsListen) {
            let channel = try await OperationsListener(
                host: opsAddress.host, port: opsAddress.port, phase: phase,
                metrics: MetricsExposition(registry: registry, workers: workers, credentials: transport.credentials)
            ).start()
            let port = channel.localAddress?.port ?? opsAddress.port
            print("jobworkerd operations listening on \(HostAndPort(host: opsAddress.host, port: port))")
            operations = channel
        }
        try await ServiceGroup(
            services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        ).run()
        try? await operations?.close()
    }
}
