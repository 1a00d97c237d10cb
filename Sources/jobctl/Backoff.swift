import GRPCCore

/// Pauses between tries of a call the server refused for now (UNAVAILABLE from a server that is
/// starting, or shutting down but still answering): 250 ms, doubling, at most 5 s, so that a client of a
/// draining server waits for the next one instead of asking in a tight loop.
struct Backoff {
    /// How long a lost or refusing server may take to come back before jobctl gives up.
    static let reconnectTimeout = Duration.seconds(30)

    private var next = Duration.milliseconds(250)

    mutating func pause() async throws {
        try await Task.sleep(for: next)
        next = min(next * 2, .seconds(5))
    }

    mutating func reset() {
        next = .milliseconds(250)
    }
}

extension Backoff {
    /// Makes `call` until the server answers it, for up to `reconnectTimeout`: each try waits for
    /// the connection to be ready (no polling), and a server that says it is starting or shutting
    /// down is asked again after a pause. Any other failure, or the last refusal, is thrown.
    static func untilAnswered<Result>(_ call: (CallOptions) async throws -> Result) async throws -> Result {
        let deadline = ContinuousClock.now + reconnectTimeout
        var backoff = Backoff()
        while true {
            var options = CallOptions.defaults
            options.waitForReady = true
            options.timeout = max(deadline - .now, .milliseconds(1))
            do {
                return try await call(options)
            } catch let error as RPCError
                where error.serverNotServing != nil && .now + backoff.next < deadline
            {
                try await backoff.pause()
            }
        }
    }
}

extension Connection {
    /// The first call of a command that follows a job or the job table (logs, wait, watch), made
    /// with the prompt deadline: an unreachable server fails at once, but one that answers that
    /// it is starting, or shutting down, is waited for (`Backoff.untilAnswered`), saying so.
    func promptly<Result>(_ call: (CallOptions) async throws -> Result) async throws -> Result {
        do {
            return try await call(Connection.prompt)
        } catch let error as RPCError {
            guard let what = error.serverNotServing else { throw error }
            Terminal.writeError("jobctl: \(label) \(what); waiting until it serves\n")
            var backoff = Backoff()
            try await backoff.pause()
            return try await Backoff.untilAnswered(call)
        }
    }
}
