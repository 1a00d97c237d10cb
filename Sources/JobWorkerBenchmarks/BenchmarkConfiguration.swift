import JobWorker

/// A worker configuration for measuring: one owner starts thousands of jobs back to back, so the
/// per-owner bounds (which exist to stop exactly that) are lifted; everything else is the default.
func benchmarkConfiguration(stateDirectory: String) -> WorkerConfiguration {
    var configuration = WorkerConfiguration(stateDirectory: stateDirectory)
    configuration.policy.maximumRunningJobsPerOwner = nil
    configuration.policy.startRatePerOwner = nil
    return configuration
}
