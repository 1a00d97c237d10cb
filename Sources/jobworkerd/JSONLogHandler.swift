import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Log records as one JSON object a line on stderr, for journald, Loki or any collector:
/// `time` (RFC 3339, UTC, milliseconds), `level`, `message`, `logger`, and each metadata field
/// (`job`, `method`, `caller` and so on) at the top level. A value is always a JSON string, so no
/// field can break its line; the handler's own keys win over a metadata field of the same name.
struct JSONLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    var metadataProvider: Logger.MetadataProvider?

    init(label: String) {
        self.label = label
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        let merged = metadata.merging(metadataProvider?.get() ?? [:]) { $1 }.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged { fields[key] = "\(value)" }
        if let error = event.error { fields["error"] = "\(error)" }
        fields["time"] = Self.timestamp(Date())
        fields["level"] = event.level.rawValue
        fields["message"] = "\(event.message)"
        fields["logger"] = label
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = (try? encoder.encode(fields)) ?? Data(#"{"message":"unencodable log record"}"#.utf8)
        line.append(UInt8(ascii: "\n"))
        // One write(2) per record and no lock (none may be held across a blocking call): a pipe
        // or socket takes a record of up to PIPE_BUF bytes whole, so records do not interleave.
        line.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }  // nowhere to log to: nothing else to do
                offset += written
            }
        }
    }

    private static func timestamp(_ date: Date) -> String {
        date.formatted(
            Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!))
    }
}
