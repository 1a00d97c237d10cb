import ArgumentParser
import Foundation

/// `jobworkerd config print [serve's flags]`: the settings `serve` would run with, each with
/// where it came from (flag, environment variable, file, or default), one a line.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Show the settings serve would use, and where each comes from.",
        subcommands: [Print.self])

    struct Print: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print serve's effective settings with their sources (flags, JOBWORKERD_*, the file, defaults).")

        @Argument(parsing: .allUnrecognized, help: "serve's flags, as you would give them (--config included).")
        var arguments: [String] = []

        func run() async throws {
            let resolved = try await ServeSettings.resolve(arguments, environment: ProcessInfo.processInfo.environment)
            let defaults = Self.defaults()
            defer {
                // Checked as serve checks them: what serve would refuse, said after the settings.
                do {
                    _ = try Serve.parse(resolved.arguments)
                } catch {
                    let message = ServeSettings.attribute(Serve.message(for: error), to: resolved.sources)
                    print("# serve would refuse these settings: \(message)")
                }
            }
            for key in ServeSettings.keys {
                let value: String
                if let source = resolved.sources[key.name] {
                    let given = ServeSettings.values(of: key.name, in: resolved.arguments)
                    if key.isFlag {
                        value = "\(resolved.arguments.contains("--" + key.name))"
                    } else {
                        value = key.isRepeatable ? "[" + given.joined(separator: ", ") + "]" : given.last ?? ""
                    }
                    print("\(key.name): \(value)    # \(source)")
                } else {
                    value = key.isFlag ? "false" : key.isRepeatable ? "[]" : defaults[key.name] ?? "~"
                    print("\(key.name): \(value)    # default")
                }
            }
        }

        /// Each option's default, as serve's help states it (an option's entry may span lines).
        private static func defaults() -> [String: String] {
            var defaults: [String: String] = [:]
            var current: String?
            var entry = ""
            func finish() {
                if let current, let value = entry.firstMatch(of: /\(default: ([^)]*)\)\s*$/)?.1 {
                    defaults[current] = String(value)
                }
            }
            for line in Serve.helpMessage(columns: 100_000).split(separator: "\n") {
                if let name = line.firstMatch(of: /^\s+--([a-z0-9-]+)/)?.1 {
                    finish()
                    (current, entry) = (String(name), String(line))
                } else {
                    entry += " " + line.trimmingCharacters(in: .whitespaces)
                }
            }
            finish()
            return defaults
        }
    }
}
