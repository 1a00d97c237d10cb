import ArgumentParser
import Foundation
import JobWorkerAPI

/// `jobctl signal ID SIG`: sends one signal to a running job (not a stop: the job ends as it then
/// ends), as `docker kill --signal` does.
struct Signal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a signal to a running job: HUP, INT, QUIT, USR1, USR2, TERM, KILL, CONT, STOP, WINCH, ALRM.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The job's id (CONTEXT/ID names its server).") var id: String
    @Argument(help: "The signal, by name (USR1, SIGUSR1) or number.") var signal: String

    /// The signals a user may send a job, by name.
    static let names: [String: Int32] = [
        "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "USR1": SIGUSR1, "USR2": SIGUSR2, "TERM": SIGTERM,
        "KILL": SIGKILL, "CONT": SIGCONT, "STOP": SIGSTOP, "WINCH": SIGWINCH, "ALRM": SIGALRM,
    ]

    /// "USR1", "SIGUSR1" or "10" as a number among `names`' (or any number: the server judges).
    static func number(_ text: String, among names: [String: Int32]) -> Int32? {
        let word = text.uppercased().hasPrefix("SIG") ? String(text.uppercased().dropFirst(3)) : text.uppercased()
        return names[word] ?? Int32(text)
    }

    var number: Int32? { Self.number(signal, among: Self.names) }

    func validate() throws {
        guard number != nil else {
            throw ValidationError(
                "\(signal): not one of HUP, INT, QUIT, USR1, USR2, TERM, KILL, CONT, STOP, WINCH, ALRM")
        }
    }

    func run() async throws {
        let number = number!
        let (server, id) = try connection.connection(forJob: self.id)
        _ = try await server.withClient { client in
            try await client.signalJob(
                .with {
                    $0.id = id
                    $0.signal = number
                }, options: Connection.prompt)
        }
    }
}
