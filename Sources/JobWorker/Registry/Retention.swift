import Foundation
import Logging

/// Deleting finished jobs as the worker's `WorkerPolicy.retention` says: at startup, whenever a
/// job ends, when the oldest finished job reaches the age limit (a timer set for that moment;
/// nothing polls), and when the policy changes.
struct Retention: Sendable {
    /// Read at each sweep.
    let policy: CurrentPolicy
    let table: JobTable
    let store: JobStore
    let stateDirectory: StateDirectory
    let logger: Logger
    /// Where the age timer's sweeps run (`WorkerConfiguration.backgroundExecutor`).
    let executor: (any TaskExecutor)?

    /// Deletes the finished jobs beyond the policy — past the age limit, then, owner by owner,
    /// the owner's oldest while the disk space of its finished jobs' output exceeds the size
    /// limit — with their records, logs and exit records. Running jobs are never considered, and
    /// one owner's output never evicts another owner's jobs. Returns how many were deleted.
    @discardableResult
    func apply(now: WallClockTime = .now) -> Int {
        let policy = policy.value.retention
        let cutoff = policy.maximumAge.map { now.advanced(by: .zero - $0) }
        let doomed = table.contents.withLock { contents -> [JobID] in
            // Usually nothing to do, known in O(1): a job ends on every call.
            let tooOld = cutoff.map { cutoff in contents.earliestFinishedEnd.map { $0 < cutoff } ?? false } ?? false
            let tooLarge =
                policy.maximumOutputBytes.map { limit in
                    contents.finishedOutputBytesByOwner.values.contains { $0 > limit }
                } ?? false
            guard tooOld || tooLarge else { return [] }
            var doomed: Set<JobID> = []
            let finished = contents.order.compactMap { contents.history[$0] }  // oldest first
            if let cutoff {
                for status in finished where (status.endedAt ?? status.startedAt) < cutoff {
                    doomed.insert(status.id)
                }
            }
            if let limit = policy.maximumOutputBytes {
                var total: [String: UInt64] = [:]
                for status in finished where !doomed.contains(status.id) {
                    total[status.owner, default: 0] += contents.allocatedOutputBytes[status.id] ?? 0
                }
                for status in finished where total[status.owner, default: 0] > limit && !doomed.contains(status.id) {
                    doomed.insert(status.id)
                    total[status.owner, default: 0] -= contents.allocatedOutputBytes[status.id] ?? 0
                }
            }
            for id in doomed {
                contents.removeFinished(id)
                contents.releaseClientToken(of: id)
            }
            if !doomed.isEmpty { contents.order.removeAll { doomed.contains($0) } }
            contents.recomputeEarliestFinishedEnd()
            return Array(doomed)
        }
        guard !doomed.isEmpty else { return 0 }
        do {
            try store.delete(doomed)
        } catch {
            logger.error("retention: \(error.logDescription)")
        }
        for id in doomed { stateDirectory.removeJob(id) }
        logger.info("retention: deleted \(doomed.count) finished job(s) and their output")
        return doomed.count
    }

    /// Sleeps until the oldest finished job reaches the age limit (or, with none, until a job
    /// ends), applies the policy, and again; until cancelled. Without an age limit it has nothing
    /// to wait for and ends at once.
    func startTimer() -> Task<Void, Never> {
        let age = policy.value.retention.maximumAge
        return Task(executorPreference: executor) {
            guard let age else { return }
            while !Task.isCancelled {
                let jobEnded = table.jobEnded
                let snapshot = jobEnded.snapshot
                let oldestEnd = table.contents.withLock { $0.earliestFinishedEnd }
                if let oldestEnd {
                    let wait = oldestEnd.advanced(by: age).timeIntervalSince(.now)
                    if wait > 0 { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000) + 1)) }
                    apply()
                } else {
                    await jobEnded.wait(whileGenerationIs: snapshot.generation)
                }
            }
        }
    }
}

extension Duration {
    /// In seconds, as a TimeInterval.
    var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// "0.03 s", for messages.
    var formattedSeconds: String {
        String(format: "%.2f s", max(0.01, timeInterval))
    }
}
