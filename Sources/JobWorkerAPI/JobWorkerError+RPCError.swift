import GRPCCore
import JobWorker

/// Domain errors become gRPC status codes here, and only here.
///
/// Everything a client can cause maps to a specific code with the library's message (which
/// names only what the client sent). Host failures become INTERNAL with a generic message: their
/// detail (paths, errno) is for the server log, not the client.
extension JobWorkerError: RPCErrorConvertible {
    public var rpcErrorCode: RPCError.Code {
        switch code {
        case .invalidArgument, .commandNotFound, .permissionDenied, .execFailed: .invalidArgument
        case .jobNotFound: .notFound
        case .jobEnded: .failedPrecondition
        case .alreadyExists: .alreadyExists
        case .resourceExhausted: .resourceExhausted
        case .shuttingDown: .unavailable
        default: .internalError
        }
    }

    public var rpcErrorMessage: String {
        rpcErrorCode == .internalError ? "the server failed to carry out the request" : message
    }
}
