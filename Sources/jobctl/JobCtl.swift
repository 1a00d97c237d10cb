import ArgumentParser
import Foundation
import JobWorkerAPI

/// `jobctl`: the command-line client of jobworkerd.
///
/// Exit codes: 0 success, 1 a failed request (one line on stderr: `jobctl: <what went wrong>`),
/// 2 a usage error (with the usage text); `run` exits with the job's own code.
@main
struct JobCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobctl",
        abstract: "Run and watch jobs on a jobworkerd server.",
        discussion: """
            Connection: --server, --cert, --key and --ca; or a context (jobctl context add, --context, \
            JOBCTL_CONTEXT); or JOBCTL_SERVER, JOBCTL_CERT, JOBCTL_KEY and JOBCTL_CA; or the context in use. Without them jobctl uses 127.0.0.1:50051 and the admin certificate of the development \
            PKI that `jobworkerd --dev` created (in /var/lib/jobworker/dev-pki, or JOBCTL_DEV_PKI).
            """,
        subcommands: [
            Start.self, Run.self, Logs.self, Stop.self, Status.self, List.self, Watch.self, Wait.self, Signal.self,
            ContextCommand.self,
        ])

    /// The connection flags may also come before the command (`jobctl --server H:P list`);
    /// each command declares them too, and reads them there.
    @OptionGroup var connection: ConnectionOptions

    static func main() async {
        RuntimeTuning.apply(eventLoops: 1)  // one connection: one thread does all of it
        let command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exitAfterParsing(error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var command = command
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch let failure as CommandFailure {
            Terminal.fail(failure.message)
        } catch {
            // `jobctl` alone and `--help` arrive here as the parser's own errors.
            if exitCode(for: error) == .success { exitAfterParsing(error) }
            Terminal.fail(CommandFailure(error).message)
        }
    }

    /// Help, the version and completion scripts go to stdout with status 0; a usage error is one
    /// `jobctl:` line and the usage on stderr, status 2.
    private static func exitAfterParsing(_ error: any Error) -> Never {
        if exitCode(for: error) == .success {
            print(fullMessage(for: error))
            Foundation.exit(0)
        }
        var text = fullMessage(for: error)
        if text.hasPrefix("Error: ") { text.removeFirst("Error: ".count) }
        Terminal.writeError("jobctl: " + text + "\n")
        Foundation.exit(2)
    }
}
