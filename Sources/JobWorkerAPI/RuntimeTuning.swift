import CLinuxEvents
import NIOCore
import NIOPosix

/// Process-wide settings for the programs that serve or stream job output (jobworkerd, jobctl,
/// the benchmark's API processes). Each was measured on two cores (BENCHMARKS.md).
public enum RuntimeTuning {
    /// Applies the settings. Call it first thing in `main`, before any task has started.
    ///
    /// - Swift concurrency runs on SwiftNIO's event loops: a handler and its connection's I/O
    ///   share threads instead of handing every message between two pools. Streaming output
    ///   became about twice as fast and steady.
    /// - malloc keeps freed blocks of up to 16 MiB instead of returning them to the kernel and
    ///   faulting fresh zeroed pages in for the next 128 KiB chunk: one stream went from about
    ///   0.6 to 1.2 GB/s.
    ///
    /// - Parameter eventLoops: the number of event loop threads; nil for one per core. A client
    ///   with one connection is fastest with one.
    public static func apply(eventLoops: Int? = nil) {
        _ = linux_set_malloc_thresholds(4 << 20, 16 << 20)
        if let eventLoops { NIOSingletons.groupLoopCountSuggestion = eventLoops }
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
