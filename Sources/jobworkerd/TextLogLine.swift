import Foundation
import Logging

/// A record as text: `TIME LEVEL LOGGER: message key=value …`, the fields in logfmt: a value
/// holding a space, `=`, a quote, a backslash or a control character is quoted and escaped, so
/// that no field (a certificate's name, say) can pass for another or start a line.
enum TextLogLine {
    static func render(_ event: LogEvent, label: String, fields: [String: String]) -> String {
        var line =
            Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            + " \(event.level) \(label): \(escaped("\(event.message)"))"
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(logfmt(value))" }
        return line
    }

    static func logfmt(_ value: String) -> String {
        let plain =
            !value.isEmpty
            && value.unicodeScalars.allSatisfy { scalar in
                scalar.value > 0x20 && scalar.value != 0x7F && !["=", "\"", "\\"].contains(scalar)
                    && !isControlOrFormat(scalar)
            }
        return plain ? value : "\"" + escaped(value) + "\""
    }

    /// Quotes, backslashes and control characters escaped.
    static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if isControlOrFormat(scalar) {
                    result += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    private static func isControlOrFormat(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }
}
