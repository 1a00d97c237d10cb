import Foundation
import Testing

@testable import JobWorkerAPI

@Suite("Escaped text")
struct EscapedTextTests {
    static let words = [
        "plain", "two words", "it's", "\u{1B}]52;c;aGVsbG8=\u{07}", "line\nbreak", "tab\there", "back\\slash",
        "\u{202E}txt.exe", "zero\u{200B}width", "émigré", "quote ' and \\ and \u{1B}", "",
    ]

    @Test("shellQuoted is read back by bash to the same bytes, in the C locale too")
    func shellRoundTrip() throws {
        for locale in ["C", "C.UTF-8"] {
            for word in Self.words {
                let bash = Process()
                bash.executableURL = URL(fileURLWithPath: "/bin/bash")
                bash.arguments = ["-c", "printf '%s' " + EscapedText.shellQuoted(word)]
                bash.environment = ["LANG": locale, "LC_ALL": locale]
                let pipe = Pipe()
                bash.standardOutput = pipe
                try bash.run()
                let output = pipe.fileHandleForReading.readDataToEndOfFile()
                bash.waitUntilExit()
                #expect(
                    output == Data(word.utf8), "\(locale): \(word.debugDescription) as \(EscapedText.shellQuoted(word))"
                )
            }
        }
    }

    @Test("escaped text holds no control or formatting character, and plain text is kept")
    func noControls() {
        for word in Self.words {
            let shown = EscapedText.escaped(word) + EscapedText.shellQuoted(word)
            #expect(
                !shown.unicodeScalars.contains { $0.properties.generalCategory.isControlOrFormat },
                "\(word.debugDescription)")
        }
        #expect(EscapedText.escaped("émigré ok") == "émigré ok")
        #expect(EscapedText.shellQuoted("plain") == "plain")
    }
}
