import Foundation
import JobWorker
import JobWorkerAPI
import Metrics
import Prometheus

#if canImport(Glibc)
    import Glibc
#endif

/// `/metrics`: the counters and histograms the worker and the API record through swift-metrics
/// (into swift-prometheus's registry), and the gauges read at scrape time (running jobs, open
/// streams, parked inits, the certificate's expiry, the process's memory, descriptors and CPU),
/// in Prometheus's text format, each with its HELP and TYPE.
struct MetricsExposition: Sendable {
    let registry: PrometheusCollectorRegistry
    /// Empty while the server starts: the worker's gauges appear once it is made.
    let workers: WorkerSlot
    let credentials: ServerCredentials

    /// Makes swift-metrics record into `registry`: call before anything makes a metric (the
    /// worker and the service make theirs on first use). Once per process.
    static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = MetricBuckets.durations
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// What each metric recorded through swift-metrics means (swift-metrics carries no help text).
    static let help: [String: String] = [
        "jobworker_jobs_started_total": "StartJob calls by result: ok, or the kind of failure.",
        "jobworker_jobs_ended_total": "Jobs whose end is on record, by final state.",
        "jobworker_job_start_duration_seconds": "Time from a StartJob's arrival at the worker to the job's exec.",
        "jobworker_store_write_duration_seconds": "Time of each write to the job database.",
        "jobworker_rpcs_total": "Calls by method and status code.",
        "jobworker_rpc_duration_seconds": "Time of each call by method (a stream: until its last message).",
        "jobworker_output_bytes_streamed_total": "Job output bytes sent to readers.",
        "jobworker_tls_handshake_failures_total": "TLS handshakes that failed, by reason.",
    ]

    func render() -> String {
        var text = ""
        func sample(_ name: String, _ type: String, _ help: String, _ value: Double) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(Self.format(value))\n"
        }
        if let worker = workers.filled {
            sample("jobworker_jobs_running", "gauge", "Jobs that have not ended yet.", Double(worker.runningJobCount))
            sample(
                "jobworker_output_streams_open", "gauge", "Output streams open now, every job together.",
                Double(worker.openOutputReaders))
            sample(
                "jobworker_inits_parked", "gauge", "Job inits started ahead, ready for a start.",
                Double(worker.parkedInits))
        }
        sample(
            "jobworker_server_certificate_expiry_timestamp_seconds", "gauge",
            "When the server certificate new connections get expires (Unix time).",
            credentials.notValidAfter.timeIntervalSince1970)
        let process = ProcessFigures.read()
        sample("process_resident_memory_bytes", "gauge", "Resident memory of the server.", process.residentBytes)
        sample("process_open_fds", "gauge", "Open file descriptors of the server.", process.openDescriptors)
        sample("process_cpu_seconds_total", "counter", "CPU time of the server, user and system.", process.cpuSeconds)
        text += Self.withHelp(registry.emitToString())
        return text
    }

    /// Adds a HELP line before each TYPE line of a metric we describe.
    static func withHelp(_ exposition: String) -> String {
        var lines: [Substring] = []
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first,
                let help = help[String(name)]
            {
                lines.append("# HELP \(name) \(help)")
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// The server process's own figures, from /proc and getrusage.
private struct ProcessFigures {
    var residentBytes: Double
    var openDescriptors: Double
    var cpuSeconds: Double

    static func read() -> ProcessFigures {
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let residentPages = statm.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return ProcessFigures(
            residentBytes: residentPages * Double(sysconf(Int32(_SC_PAGESIZE))),
            openDescriptors: Double(max(0, descriptors - 1)),  // less the listing's own
            cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime))
    }
}
