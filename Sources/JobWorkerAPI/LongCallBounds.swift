import GRPCCore

extension ServerPhase {
    /// Runs a long call's `body` (an output stream, a wait, a watch) until it returns, the client
    /// goes away (`CancellationError`) or, `endingAtDrain`, the server drains (UNAVAILABLE), so
    /// that no long call holds a shutdown. gRPC reports a client that went away (a reset stream,
    /// a dropped connection, a passed deadline) through the context's cancellation handle, not by
    /// cancelling the handler's task: a call waiting for a job's next byte or its end would
    /// otherwise keep its task and descriptor until the job ended.
    func bound<Result: Sendable>(
        _ context: ServerContext, endingAtDrain: Bool = true, _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await context.cancellation.cancelled
                throw CancellationError()
            }
            if endingAtDrain {
                group.addTask {
                    await self.waitUntilDraining()
                    throw RPCError(
                        code: .unavailable,
                        message: "the server is shutting down: call again (output: from the next offset)")
                }
            }
            defer { group.cancelAll() }
            guard let result = try await group.next() ?? nil else { throw CancellationError() }
            return result
        }
    }
}
