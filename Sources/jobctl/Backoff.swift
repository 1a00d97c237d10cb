/// Pauses between tries of a call the server refused for now (UNAVAILABLE from a server that is
/// shutting down but still answers): 250 ms, doubling, at most 5 s, so that a client of a
/// draining server waits for the next one instead of asking in a tight loop.
struct Backoff {
    private var next = Duration.milliseconds(250)

    mutating func pause() async throws {
        try await Task.sleep(for: next)
        next = min(next * 2, .seconds(5))
    }

    mutating func reset() {
        next = .milliseconds(250)
    }
}
