import Foundation
import Logging

/// A record as one JSON object: `time` (RFC 3339, UTC, milliseconds), `level`, `message`,
/// `logger`, and each field (`job`, `method`, `caller` and so on) at the top level. Every value is
/// a JSON string, so no field can break its line; the record's own keys win over a field's.
enum JSONLogLine {
    static func render(_ event: LogEvent, label: String, fields: [String: String]) -> String {
        var object = fields
        object["time"] = Date().formatted(
            Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!))
        object["level"] = event.level.rawValue
        object["message"] = "\(event.message)"
        object["logger"] = label
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(object) else { return #"{"message":"unencodable log record"}"# }
        return String(decoding: data, as: UTF8.self)
    }
}
