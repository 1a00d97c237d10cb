/// How fast one owner may start jobs: a token bucket of `burst` starts, refilled at `perSecond`.
/// One owner can then never take the server's whole running-job limit at once, however fast it
/// asks. A rate or burst of 0 or less bounds nothing.
public struct StartRate: Sendable, Hashable {
    public var perSecond: Double
    public var burst: Int

    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }
}

/// One owner's token bucket. A pure value: time comes in as an argument.
struct StartTokens: Sendable {
    private var tokens: Double
    private var updatedAt: ContinuousClock.Instant

    init(rate: StartRate, now: ContinuousClock.Instant) {
        tokens = Double(rate.burst)
        updatedAt = now
    }

    /// Takes a token if there is one; otherwise says how long until the next one.
    mutating func take(rate: StartRate, now: ContinuousClock.Instant) -> Duration? {
        let elapsed = (now - updatedAt).timeInterval
        tokens = min(Double(rate.burst), tokens + max(0, elapsed) * rate.perSecond)
        updatedAt = now
        guard tokens < 1 else {
            tokens -= 1
            return nil
        }
        return .seconds((1 - tokens) / rate.perSecond)
    }

    /// Whether the bucket is full again at `now` (and so need not be kept).
    func isFull(rate: StartRate, now: ContinuousClock.Instant) -> Bool {
        tokens + max(0, (now - updatedAt).timeInterval) * rate.perSecond >= Double(rate.burst)
    }
}
