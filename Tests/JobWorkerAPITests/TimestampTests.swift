import JobWorker
import SwiftProtobuf
import Testing

@testable import JobWorkerAPI

@Suite("Exact timestamps")
struct TimestampTests {
    @Test("a job time becomes a protobuf Timestamp to the nanosecond, before 1970 too")
    func exactConversion() {
        for (nanoseconds, seconds, nanos) in [
            (1_765_000_000_123_456_789, 1_765_000_000, 123_456_789), (-1, -1, 999_999_999),
            (0, 0, 0), (-1_000_000_000, -1, 0),
        ] as [(Int64, Int64, Int32)] {
            let timestamp = Google_Protobuf_Timestamp(WallClockTime(nanosecondsSince1970: nanoseconds))
            #expect(timestamp.seconds == seconds && timestamp.nanos == nanos, "\(nanoseconds)")
        }
        let now = WallClockTime.now
        let timestamp = Google_Protobuf_Timestamp(now)
        #expect(Int64(timestamp.seconds) * 1_000_000_000 + Int64(timestamp.nanos) == now.nanosecondsSince1970)
    }

    @Test("moving a time saturates towards where it moves: a retention of a million days keeps everything")
    func saturation() {
        let now = WallClockTime.now
        #expect(now.advanced(by: .zero - .seconds(86_400 * 1_000_000)) == WallClockTime(nanosecondsSince1970: .min))
        #expect(now.advanced(by: .seconds(86_400 * 1_000_000)) == WallClockTime(nanosecondsSince1970: .max))
        #expect(now.advanced(by: .seconds(-1)).nanosecondsSince1970 == now.nanosecondsSince1970 - 1_000_000_000)
    }
}
