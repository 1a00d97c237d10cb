import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Deleting finished jobs as `WorkerConfiguration.retention` says: at startup, whenever a job
/// ends, and when the oldest finished job reaches the age limit (a timer set for that moment;
/// nothing polls).
extension Worker {
    /// Deletes the finished jobs beyond the policy — past the age limit, then the oldest while
    /// their output together exceeds the size limit — with their records, logs and exit records.
    /// Running jobs are never considered. Returns how many were deleted.
    @discardableResult
    func applyRetention(now: Date = Date()) -> Int {
        let policy = configuration.retention
        let cutoff = policy.maximumAge.map { now.addingTimeInterval(-$0.timeInterval) }
        let doomed = registry.withLock { registry -> [JobID] in
            // Usually nothing to do, known in O(1): a job ends on every call.
            let tooOld = cutoff.map { cutoff in registry.earliestFinishedEnd.map { $0 < cutoff } ?? false } ?? false
            let tooLarge = policy.maximumOutputBytes.map { registry.finishedOutputBytes > $0 } ?? false
            guard tooOld || tooLarge else { return [] }
            var doomed: Set<JobID> = []
            let finished = registry.order.compactMap { registry.history[$0] }  // oldest first
            if let cutoff {
                for status in finished where (status.endedAt ?? status.startedAt) < cutoff {
                    doomed.insert(status.id)
                }
            }
            if let limit = policy.maximumOutputBytes {
                var total = finished.filter { !doomed.contains($0.id) }.reduce(UInt64(0)) { $0 + $1.outputBytes }
                for status in finished where total > limit && !doomed.contains(status.id) {
                    doomed.insert(status.id)
                    total -= status.outputBytes
                }
            }
            for id in doomed { registry.removeFinished(id) }
            if !doomed.isEmpty { registry.order.removeAll { doomed.contains($0) } }
            registry.recomputeEarliestFinishedEnd()
            return Array(doomed)
        }
        guard !doomed.isEmpty else { return 0 }
        do {
            try store.delete(doomed)
        } catch {
            configuration.logger.error("\(error.message)")
        }
        for id in doomed { stateDirectory.removeJob(id) }
        configuration.logger.info("retention: deleted \(doomed.count) finished job(s) and their output")
        return doomed.count
    }

    /// Sleeps until the oldest finished job reaches the age limit (or, with none, until a job
    /// ends), applies the policy, and again.
    func startRetentionTimer() {
        guard let age = configuration.retention.maximumAge else { return }
        let task = Task { [weak self] in
            while !Task.isCancelled {
                guard let (jobEnded, snapshot, oldestEnd) = self?.retentionState() else { return }
                if let oldestEnd {
                    let wait = oldestEnd.addingTimeInterval(age.timeInterval).timeIntervalSinceNow
                    if wait > 0 { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000) + 1)) }
                    self?.applyRetention()
                } else {
                    await jobEnded.wait(whileGenerationIs: snapshot.generation)
                }
            }
        }
        registry.withLock { $0.retentionTask = task }
    }

    /// The job-ended signal, its generation now, and when the earliest finished job ended.
    private func retentionState() -> (ChangeSignal, ChangeSignal.Snapshot, Date?) {
        registry.withLock { registry in
            (registry.jobEnded, registry.jobEnded.snapshot, registry.earliestFinishedEnd)
        }
    }
}

extension Duration {
    /// In seconds, as a TimeInterval.
    var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
