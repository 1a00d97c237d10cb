import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// jobworkerd's log handler: each record one line on stderr, as JSON (`JSONLogLine`, for
/// journald, Loki or any collector) or as text (`TextLogLine`, for people).
///
/// One write(2) per record and no lock (none may be held across a blocking call): a pipe or a
/// socket takes a record of up to PIPE_BUF bytes whole, so records do not interleave.
struct StderrLogHandler: LogHandler {
    enum Format: Sendable {
        case text
        case json
    }

    let label: String
    let format: Format
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, format: Format) {
        self.label = label
        self.format = format
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
        let line =
            switch format {
            case .json: JSONLogLine.render(event, label: label, fields: fields)
            case .text: TextLogLine.render(event, label: label, fields: fields)
            }
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }  // nowhere to log to: nothing else to do
            offset += written
        }
    }
}
