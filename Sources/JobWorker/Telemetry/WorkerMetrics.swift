import Foundation
import Metrics

/// What the worker reports through swift-metrics: whatever backend the process bootstrapped
/// (jobworkerd: Prometheus), nothing at all without one. Labels are bounded sets (results, states,
/// operations): never a job id or an owner.
///
/// Handles are made on first use, so a process bootstraps its metrics system before it makes a
/// worker.
enum WorkerMetrics {
    /// StartJob's results: `ok`, or the failure's kind.
    static func jobStarted(_ result: JobWorkerError.Code?, after duration: Duration) {
        guard let result else {
            startedOK.increment()
            startDuration.record(duration: duration)
            return
        }
        Counter(label: "jobworker_jobs_started_total", dimensions: [("result", result.metricValue)]).increment()
    }

    /// A job's end, on record, by its final state.
    static func jobEnded(_ state: JobState) {
        Counter(label: "jobworker_jobs_ended_total", dimensions: [("state", state.metricValue)]).increment()
    }

    /// One write to the job database (a start, an end, a stop, a deletion).
    static func storeWrite(took duration: Duration) {
        storeWriteDuration.record(duration: duration)
    }

    private static let startedOK = Counter(label: "jobworker_jobs_started_total", dimensions: [("result", "ok")])
    private static let startDuration = Timer(label: "jobworker_job_start_duration_seconds")
    private static let storeWriteDuration = Timer(label: "jobworker_store_write_duration_seconds")
}

extension JobWorkerError.Code {
    /// The kind as a metric label value: snake case, one of a fixed few.
    var metricValue: String { description.snakeCased }
}

extension JobState {
    /// The state as a metric label value: snake case, as the API spells it in lowercase.
    var metricValue: String { rawValue.snakeCased }
}

extension String {
    /// "oomKilled" as "oom_killed".
    fileprivate var snakeCased: String {
        reduce(into: "") { text, character in
            if character.isUppercase { text += "_" + character.lowercased() } else { text.append(character) }
        }
    }
}
