import CoreMetrics
import Prometheus
import Synchronization

/// swift-prometheus behind a switch, for measuring what metrics cost within one process: with
/// the switch off every counter and timer of the worker and the API returns at once (as with
/// no metrics system), on they record into Prometheus as jobworkerd's do. One atomic load is
/// what the switch adds to either side.
struct SwitchedMetricsFactory: MetricsFactory {
    static let switchedOn = Atomic<Bool>(false)
    let inner: PrometheusMetricsFactory

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        SwitchedCounter(inner: inner.makeCounter(label: label, dimensions: dimensions))
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        SwitchedTimer(inner: inner.makeTimer(label: label, dimensions: dimensions))
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        inner.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        inner.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        inner.makeMeter(label: label, dimensions: dimensions)
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let switched = handler as? SwitchedCounter { inner.destroyCounter(switched.inner) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let switched = handler as? SwitchedTimer { inner.destroyTimer(switched.inner) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        inner.destroyFloatingPointCounter(handler)
    }

    func destroyRecorder(_ handler: any RecorderHandler) { inner.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { inner.destroyMeter(handler) }
}

private final class SwitchedCounter: CounterHandler, Sendable {
    let inner: any CounterHandler
    init(inner: any CounterHandler) { self.inner = inner }

    func increment(by amount: Int64) {
        if SwitchedMetricsFactory.switchedOn.load(ordering: .relaxed) { inner.increment(by: amount) }
    }

    func reset() { inner.reset() }
}

private final class SwitchedTimer: TimerHandler, Sendable {
    let inner: any TimerHandler
    init(inner: any TimerHandler) { self.inner = inner }

    func recordNanoseconds(_ duration: Int64) {
        if SwitchedMetricsFactory.switchedOn.load(ordering: .relaxed) { inner.recordNanoseconds(duration) }
    }
}
