import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import JobWorkerAPI

/// A client of one server, and the one place where RPC failures become the line the user reads.
struct Connection {
    let address: HostAndPort
    let credentials: ClientCredentials
    /// The context it came from, if any: the SERVER column of a listing of several.
    var name: String? = nil

    /// How a listing of several servers names this one.
    var label: String { name ?? address.description }

    typealias Client = Jobworker_V1_JobWorker.Client<HTTP2ClientTransport.Posix>

    /// How long a call that should answer at once may take, connecting included: an unreachable
    /// server fails within this, never hangs.
    static let answerTimeout = Duration.seconds(5)

    /// Options for a call that should answer at once.
    static var prompt: CallOptions {
        var options = CallOptions.defaults
        options.timeout = answerTimeout
        return options
    }

    /// Runs `body` with a client; any RPC failure in it becomes a `CommandFailure`.
    func withClient<Result: Sendable>(_ body: (Client) async throws -> Result) async throws -> Result {
        let transport: HTTP2ClientTransport.Posix
        do {
            transport = try TLSClientTransport.make(to: address, credentials: credentials)
        } catch {
            throw CommandFailure("cannot use the TLS credentials: \(error)")
        }
        do {
            return try await withGRPCClient(transport: transport) { grpcClient in
                try await body(Jobworker_V1_JobWorker.Client(wrapping: grpcClient))
            }
        } catch let error as RPCError {
            throw CommandFailure(describe(error), code: error.isServerVerdict ? error.code : nil)
        }
    }

    /// The server's own message for what the request got wrong; for transport failures, what
    /// went wrong with the connection, in words.
    func describe(_ error: RPCError) -> String {
        if error.code == .deadlineExceeded {
            return "\(address) did not answer in time"  // the call's own deadline, on this side
        }
        if error.code == .unavailable, !error.isServerVerdict {
            return connectionFailure(error)
        }
        // The server's words may quote what a tenant chose (a job id, an argument): escaped,
        // like everything a tenant chose that jobctl prints for people.
        if error.code == .unknown || error.code == .internalError {
            return "the server failed: \(EscapedText.escaped(error.message))"
        }
        return EscapedText.escaped(error.message)
    }

    private func connectionFailure(_ error: RPCError) -> String {
        let cause = Self.rootCause(of: error)
        let detail = cause.lowercased()
        if ProcessInfo.processInfo.environment["JOBCTL_DEBUG"] != nil { Terminal.writeError("\(error)\n") }
        if detail.contains("connection refused") {
            return "cannot connect to \(address): connection refused (is jobworkerd running there?)"
        }
        if detail.contains("certificate_verify_failed") {
            return "cannot verify the server at \(address): its certificate is not signed by the CA given with --ca"
        }
        if detail.contains("failedtovalidatehostname") {
            return "cannot verify the server at \(address): its certificate is not valid for \(address.host)"
        }
        if detail.contains("alert") || String(describing: error).contains("HTTP/2 connection preface") {
            return
                "the server at \(address) refused the TLS handshake: is your certificate issued by its client CA, unexpired, and for client use?"
        }
        return "cannot connect to \(address): \(cause)"
    }

    /// The innermost cause's description: the part that says what happened.
    private static func rootCause(of error: any Error) -> String {
        var current: any Error = error
        while true {
            if let rpc = current as? RPCError, let cause = rpc.cause {
                current = cause
            } else if let runtime = current as? RuntimeError, let cause = runtime.cause {
                current = cause
            } else {
                return "\(current)"
            }
        }
    }
}

extension RPCError {
    /// Whether the status came from the server's handler (it then has a message for the user)
    /// rather than from the transport.
    var isServerVerdict: Bool { cause == nil && !message.isEmpty }

    /// The server said it is shutting down (it ends long calls so when it drains): a call made
    /// at once would be refused again, so the caller waits before it tries the next server.
    var isServerDraining: Bool {
        code == .unavailable
            && (message.hasPrefix("the server is shutting down") || message.hasPrefix("the worker is shutting down"))
    }

    /// The server said it is starting (it answers while it adopts the jobs of its previous run).
    var isServerStarting: Bool { code == .unavailable && message.hasPrefix("the server is starting") }

    /// "is starting" or "is shutting down" when the server answered that it does not serve (yet,
    /// or any more): a call made at once would be refused again, so the caller waits and asks
    /// again. nil for any other failure.
    var serverNotServing: String? {
        isServerStarting ? "is starting" : isServerDraining ? "is shutting down" : nil
    }
}
