import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A moment of the host's real-time clock, in whole nanoseconds since 1970.
///
/// Why not `Date`: a `Date` is a `Double` of seconds since 2001, which today resolves only about
/// a hundred nanoseconds, so a time written to the store and read back (or sent as a protobuf
/// `Timestamp`) came back different from what was reported before. Job times are integers from
/// the clock to the wire and the store, and read back exactly.
public struct WallClockTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanosecondsSince1970: Int64

    public init(nanosecondsSince1970: Int64) {
        self.nanosecondsSince1970 = nanosecondsSince1970
    }

    /// The nearest nanosecond to `date`.
    public init(_ date: Date) {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let nanoseconds = ((date.timeIntervalSince1970 - seconds) * 1e9).rounded()
        self.init(nanosecondsSince1970: Int64(seconds) * 1_000_000_000 + Int64(nanoseconds))
    }

    /// The real-time clock now (CLOCK_REALTIME).
    public static var now: WallClockTime {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return WallClockTime(nanosecondsSince1970: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }

    /// Whole seconds since 1970 and the nanoseconds past them (0..<1e9), as protobuf's
    /// `Timestamp` holds a time.
    public var secondsAndNanoseconds: (seconds: Int64, nanoseconds: Int32) {
        let (seconds, remainder) = nanosecondsSince1970.quotientAndRemainder(dividingBy: 1_000_000_000)
        return remainder < 0 ? (seconds - 1, Int32(remainder + 1_000_000_000)) : (seconds, Int32(remainder))
    }

    /// The time as a `Date`, for display (rounded to what a `Date` can hold).
    public var date: Date {
        let (seconds, nanoseconds) = secondsAndNanoseconds
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1e9)
    }

    /// Seconds from `other` to this time.
    public func timeIntervalSince(_ other: WallClockTime) -> TimeInterval {
        Double(nanosecondsSince1970 - other.nanosecondsSince1970) / 1e9
    }

    /// This time moved by `duration`, saturating at the end of the range it moves towards
    /// (a retention of a million days is "forever", not a wrap to the other end).
    public func advanced(by duration: Duration) -> WallClockTime {
        let (seconds, attoseconds) = duration.components
        let saturated = WallClockTime(nanosecondsSince1970: seconds < 0 || attoseconds < 0 ? .min : .max)
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let total = nanoseconds.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000)
        guard !nanoseconds.overflow, !total.overflow else { return saturated }
        let moved = nanosecondsSince1970.addingReportingOverflow(total.partialValue)
        return moved.overflow ? saturated : WallClockTime(nanosecondsSince1970: moved.partialValue)
    }

    public static func < (lhs: WallClockTime, rhs: WallClockTime) -> Bool {
        lhs.nanosecondsSince1970 < rhs.nanosecondsSince1970
    }

    public var description: String { date.description }
}
