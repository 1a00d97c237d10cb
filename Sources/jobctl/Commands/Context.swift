import ArgumentParser
import Foundation
import JobWorkerAPI

/// `jobctl context add|use|list|rm`: named servers and their credentials, as kubectl's contexts.
struct ContextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "context", abstract: "Keep several servers by name: add, use, list, rm.",
        subcommands: [Add.self, Use.self, ListContexts.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add (or replace) a context: a server and the credentials for it.")

        @Argument(help: "The context's name, e.g. prod-eu.") var name: String
        /// --server, --cert, --key and --ca: the connection flags every command takes (jobctl
        /// reads them wherever they come), here all required.
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            guard connection.server != nil, connection.cert != nil, connection.key != nil, connection.ca != nil
            else {
                throw ValidationError("give the context's --server, --cert, --key and --ca")
            }
            guard !name.isEmpty, !name.contains("/"), !name.contains(","),
                !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                throw ValidationError("context name \"\(name)\": give a name without /, commas or control characters")
            }
        }

        func run() throws {
            let (server, cert, key, ca) = (connection.server!, connection.cert!, connection.key!, connection.ca!)
            var config = try JobctlConfig.load()
            let working = FileManager.default.currentDirectoryPath
            func absolute(_ path: String) throws -> String {
                let full = path.hasPrefix("/") ? path : working + "/" + path
                guard FileManager.default.isReadableFile(atPath: full) else {
                    throw CommandFailure("cannot read \(full)")
                }
                return full
            }
            let context = JobctlConfig.Context(
                name: name, server: server, cert: try absolute(cert), key: try absolute(key), ca: try absolute(ca))
            config.contexts.removeAll { $0.name == name }
            config.contexts.append(context)
            if config.currentContext == nil { config.currentContext = name }
            try config.save()
            print("context \(name): \(server)" + (config.currentContext == name ? " (in use)" : ""))
        }
    }

    struct Use: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Use this context when none is named.")
        @Argument(help: "The context's name.") var name: String

        func run() throws {
            var config = try JobctlConfig.load()
            _ = try config.context(named: name)
            config.currentContext = name
            try config.save()
            print("using context \(name)")
        }
    }

    struct ListContexts: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List the contexts; * marks the one in use.")
        @Flag(help: "Print them as a JSON array.") var json = false

        func run() throws {
            let config = try JobctlConfig.load()
            if json {
                let objects = config.contexts.map { context -> [String: Any] in
                    [
                        "name": context.name, "server": context.server, "cert": context.cert, "key": context.key,
                        "ca": context.ca, "current": context.name == config.currentContext,
                    ]
                }
                let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            let width = max(4, config.contexts.map(\.name.count).max() ?? 0)
            print("  " + "NAME".padding(toLength: width, withPad: " ", startingAt: 0) + "   SERVER")
            for context in config.contexts {
                let mark = context.name == config.currentContext ? "* " : "  "
                print(
                    mark + context.name.padding(toLength: width, withPad: " ", startingAt: 0) + "   " + context.server)
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a context.")
        @Argument(help: "The context's name.") var name: String

        func run() throws {
            var config = try JobctlConfig.load()
            _ = try config.context(named: name)
            config.contexts.removeAll { $0.name == name }
            if config.currentContext == name { config.currentContext = nil }
            try config.save()
            print("removed context \(name)")
        }
    }
}
