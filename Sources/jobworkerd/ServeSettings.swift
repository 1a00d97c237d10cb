import ArgumentParser
import Configuration
import Foundation
import Synchronization
import SystemPackage
import Yams

/// Where `serve` takes its settings from, in order: its flags, `JOBWORKERD_…` environment
/// variables, the configuration file (`--config PATH`, `$JOBWORKERD_CONFIG`, else
/// `/etc/jobworker/jobworkerd.yaml` if it exists), and the defaults.
///
/// Every flag has a key of the same name (`max-cpu: 4`, `JOBWORKERD_MAX_CPU=4`; a repeatable
/// flag takes a YAML list, or commas in the variable). The variables and the file are read with
/// swift-configuration and turned into the flags they stand for, ahead of the command line's, so
/// that one parser checks every value whatever its source; a bad one is reported with its key and
/// where it came from. An unknown key in the file stops startup, naming the key and the file.
struct ServeSettings {
    /// Where a setting's value came from.
    enum Source: Equatable, CustomStringConvertible {
        case flag
        case environment(String)
        case file(String)

        var description: String {
            switch self {
            case .flag: "flag"
            case .environment(let name): "environment \(name)"
            case .file(let path): "file \(path)"
            }
        }
    }

    /// A setting: its key (the flag's name without dashes) and its kind.
    struct Key {
        var name: String
        var isFlag: Bool
        var isRepeatable: Bool
    }

    static let defaultPath = "/etc/jobworker/jobworkerd.yaml"

    /// The settings serve was parsed from (`resolve`'s arguments at startup): what a reload
    /// compares its own reading with.
    static let startupArguments = Mutex<[String]?>(nil)

    /// Serve's settings, read off its declaration: each option's and flag's property, by the
    /// name its help gives it (a repeatable option is named in the singular: `--io-device`).
    /// Hidden flags, and `--config` itself, have no key.
    static let keys: [Key] = {
        let help = Serve.helpMessage(columns: 100_000)
        let names = Set(help.matches(of: /--([a-z0-9-]+)/).map { String($0.1) })
        return Mirror(reflecting: Serve()).children.compactMap { child in
            guard let label = child.label, label.hasPrefix("_") else { return nil }
            let type = String(describing: Swift.type(of: child.value))
            guard type.hasPrefix("Option<") || type.hasPrefix("Flag<") else { return nil }
            let plural = label.dropFirst().reduce(into: "") { text, character in
                if character.isUppercase { text += "-" + character.lowercased() } else { text.append(character) }
            }
            guard let name = [plural, String(plural.dropLast())].first(where: names.contains), name != "config"
            else { return nil }
            return Key(name: name, isFlag: type.hasPrefix("Flag<"), isRepeatable: type.hasPrefix("Option<Array"))
        }
    }()

    /// The command line with the variables' and the file's settings before it (never for a key
    /// the command line gives), and each given setting's source.
    static func resolve(_ arguments: [String], environment: [String: String]) async throws -> (
        arguments: [String], sources: [String: Source]
    ) {
        var sources: [String: Source] = [:]
        for key in keys where arguments.contains(where: { $0 == "--" + key.name || $0.hasPrefix("--\(key.name)=") }) {
            sources[key.name] = .flag
        }
        var added: [String] = []
        func add(_ key: Key, _ values: [String], from source: Source) throws {
            guard sources[key.name] == nil else { return }
            sources[key.name] = source
            if key.isFlag {
                let word = values.first?.lowercased() ?? ""
                guard ["true", "yes", "on", "1", "false", "no", "off", "0"].contains(word) else {
                    throw ValidationError(
                        "\(key.name) (\(source)): \"\(values.first ?? "")\" is neither true nor false")
                }
                if ["true", "yes", "on", "1"].contains(word) { added.append("--" + key.name) }
            } else {
                for value in values { added += ["--" + key.name, value] }
            }
        }
        let variables = ConfigReader(
            provider: EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: ["jobworkerd"]))
        for key in keys {
            let variable = "JOBWORKERD_" + key.name.uppercased().replacingOccurrences(of: "-", with: "_")
            guard environment[variable] != nil else { continue }
            let values =
                key.isRepeatable
                ? variables.stringArray(forKey: ConfigKey([key.name])) ?? []
                : variables.string(forKey: ConfigKey([key.name])).map { [$0] } ?? []
            try add(key, values, from: .environment(variable))
        }
        if let path = try configPath(arguments, environment: environment) {
            for (key, values) in try await fileSettings(at: path) { try add(key, values, from: .file(path)) }
        }
        return (added + arguments, sources)
    }

    /// serve's own arguments in jobworkerd's (`serve` named or not), or nil for another command.
    static func serveArguments(of arguments: [String]) -> [String]? {
        let otherCommands = ["certs", "reload", "config", "help", "--help", "-h"]
        guard arguments.first.map({ !otherCommands.contains($0) }) ?? true else { return nil }
        return Array(arguments.dropFirst(arguments.first == "serve" ? 1 : 0))
    }

    /// The values the setting `name` has in serve's arguments (`--name value`, `--name=value`;
    /// a flag's is `--name` itself), in order.
    static func values(of name: String, in arguments: [String]) -> [String] {
        let isFlag = keys.first { $0.name == name }?.isFlag ?? false
        var values: [String] = []
        for (index, argument) in arguments.enumerated() {
            if argument == "--" + name {
                if isFlag {
                    values.append(argument)
                } else if index + 1 < arguments.count {
                    values.append(arguments[index + 1])
                }
            } else if argument.hasPrefix("--\(name)=") {
                values.append(String(argument.dropFirst(name.count + 3)))
            }
        }
        return values
    }

    /// The file `--config` or `$JOBWORKERD_CONFIG` names (which must exist), else the default
    /// one if it exists.
    private static func configPath(_ arguments: [String], environment: [String: String]) throws -> String? {
        if let index = arguments.firstIndex(of: "--config") {
            guard index + 1 < arguments.count else { throw ValidationError("--config: give the file's path") }
            return arguments[index + 1]
        }
        if let argument = arguments.first(where: { $0.hasPrefix("--config=") }) {
            return String(argument.dropFirst("--config=".count))
        }
        if let path = environment["JOBWORKERD_CONFIG"], !path.isEmpty { return path }
        return FileManager.default.fileExists(atPath: defaultPath) ? defaultPath : nil
    }

    /// Each key the file sets, with its values: read with swift-configuration's YAML provider,
    /// after a check that the file holds only known keys with scalar (or, for repeatable flags,
    /// list) values.
    private static func fileSettings(at path: String) async throws -> [(Key, [String])] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("the configuration file \(path) cannot be read")
        }
        let parsed: Any?
        do {
            parsed = try Yams.load(yaml: String(decoding: data, as: UTF8.self))
        } catch {
            throw ValidationError("the configuration file \(path) is not valid YAML: \(error)")
        }
        guard let mapping = parsed as? [String: Any] ?? (parsed == nil ? [:] : nil) else {
            throw ValidationError("the configuration file \(path) must be a mapping of settings (key: value)")
        }
        let known = Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0) })
        for (name, value) in mapping.sorted(by: { $0.key < $1.key }) {
            guard let key = known[name] else {
                throw ValidationError(
                    "unknown key \"\(name)\" in \(path): the keys are the flags of jobworkerd serve, e.g. max-cpu, listen"
                )
            }
            if value is [String: Any] || (value is [Any] && !key.isRepeatable) {
                throw ValidationError("key \(name) in \(path): give a single value")
            }
        }
        let reader = ConfigReader(provider: try await FileProvider<YAMLSnapshot>(filePath: FilePath(path)))
        return keys.compactMap { key in
            guard mapping[key.name] != nil else { return nil }
            let configKey = ConfigKey([key.name])
            let values: [String]? =
                key.isRepeatable
                ? reader.stringArray(forKey: configKey) ?? reader.string(forKey: configKey).map { [$0] }
                : reader.string(forKey: configKey).map { [$0] }
            return values.map { (key, $0) }
        }
    }

    /// A parse error about a setting the variables or the file gave, saying so: `--max-cpu` in
    /// the parser's words becomes `max-cpu (file /etc/jobworker/jobworkerd.yaml)`.
    static func attribute(_ message: String, to sources: [String: Source]) -> String {
        var message = message
        for (name, source) in sources where source != .flag && message.contains("--" + name) {
            message = message.replacingOccurrences(of: "--" + name, with: "\(name) (\(source))")
        }
        return message
    }
}
