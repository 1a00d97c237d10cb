import Foundation
import JobWorker

/// Text a tenant chose (arguments, names, messages, certificate names), made safe to show on a
/// terminal or write into a one-line log record.
///
/// Every control and formatting character is written as an escape (`\n`, `\t`, `\e`, `\u{202E}`),
/// and a backslash as `\\`, so what is shown cannot move the cursor, clear the screen, set the
/// clipboard (OSC 52), start a fake line or reorder what follows it. Everything else, including
/// non-ASCII letters, is kept as it is. kubectl fixed the same (CVE-2021-25743).
public enum EscapedText {
    /// `text` with its control characters escaped.
    public static func escaped(_ text: String) -> String {
        render(text, as: .display)
    }

    /// `word` as bash reads it back: as it is when plain, in single quotes when it holds spaces
    /// or quotes, in `$'…'` with escapes (`\e`, `\n`, `\x07`, `\xe2\x80\xae`) when it holds control
    /// or formatting characters; bash reads it back to the same bytes in any locale.
    public static func shellQuoted(_ word: String) -> String {
        let plain = !word.isEmpty && word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
        if needsEscaping(word) { return "$'" + render(word, as: .shell) + "'" }
        return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    private enum Style { case display, shell }

    private static func render(_ text: String, as style: Style) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "'" where style == .shell: result += "\\'"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{1B}": result += "\\e"
            default:
                guard scalar.properties.generalCategory.isControlOrFormat else {
                    result.unicodeScalars.append(scalar)
                    continue
                }
                switch style {
                case .display: result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                case .shell:
                    // Its UTF-8 bytes: bash reads \xHH the same in every locale (\u only in UTF-8 ones).
                    for byte in String(scalar).utf8 { result += "\\x" + String(byte, radix: 16).leftPadded(to: 2) }
                }
            }
        }
        return result
    }

    /// Whether `text` would be shown differently by `escaped`.
    public static func needsEscaping(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0 == "\\" || $0.properties.generalCategory.isControlOrFormat }
    }

    /// `text` escaped, in double quotes (a quote inside escaped too), cut to `limit` characters.
    public static func quoted(_ text: String, limit: Int = 64) -> String {
        let cut = text.count > limit ? String(text.prefix(limit)) + "…" : text
        return "\"" + escaped(cut).replacingQuotes() + "\""
    }
}

extension String {
    /// Zeros in front up to `width` characters, for hex escapes.
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }

    fileprivate func replacingQuotes() -> String {
        var result = ""
        for character in self { result += character == "\"" ? "\\\"" : String(character) }
        return result
    }
}
