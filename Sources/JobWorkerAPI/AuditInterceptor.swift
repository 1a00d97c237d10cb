import Foundation
import GRPCCore
import JobWorker
import Logging
import Synchronization

/// Requests and responses that name a job, so the audit trail can too.
protocol NamesJob {
    var jobID: String { get }
}

extension Jobworker_V1_StopJobRequest: NamesJob { var jobID: String { id } }
extension Jobworker_V1_GetJobStatusRequest: NamesJob { var jobID: String { id } }
extension Jobworker_V1_StreamJobOutputRequest: NamesJob { var jobID: String { id } }
extension Jobworker_V1_WaitJobRequest: NamesJob { var jobID: String { id } }
extension Jobworker_V1_SignalJobRequest: NamesJob { var jobID: String { id } }
extension Jobworker_V1_StartJobResponse: NamesJob { var jobID: String { status.id } }

/// Records every RPC in the server log once it has finished: caller identity and role, method,
/// job id, and outcome (OK or the status code). Never request contents beyond the job id, and
/// never job output.
///
/// Each record is the message `rpc` with the fields `caller`, `role`, `method`, `job` and
/// `outcome` as metadata: with `--log-format json` one JSON object a line, whatever a field holds
/// escaped by JSON; in text, `key=value` pairs, whose values are checked (a job id is recorded
/// only once it parses as one, anything else as "malformed"; identities hold no control
/// characters) so that none can start a line of its own.
///
/// Put it first among the interceptors, before `AuthorizationInterceptor`, so that refused calls
/// are recorded too.
public struct AuditInterceptor: ServerInterceptor {
    public let logger: Logger
    public let resolver: any IdentityResolver

    public init(logger: Logger, resolver: any IdentityResolver) {
        self.logger = logger
        self.resolver = resolver
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let record = AuditRecord(
            logger: logger, identity: resolver.identity(of: context, metadata: request.metadata),
            method: context.descriptor.fullyQualifiedMethod)
        var request = request
        let messages = request.messages
        request.messages = RPCAsyncSequence(
            wrapping: messages.map { message in
                record.noteJob(in: message)
                return message
            })
        var response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            record.finish(error)
            throw error
        }
        switch response.accepted {
        case .failure(let error):
            record.finish(error)
        case .success(var contents):
            let produce = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await produce(RPCWriter(wrapping: NotingWriter(writer: writer, record: record)))
                    record.finish(nil)
                    return trailers
                } catch {
                    record.finish(error)
                    throw error
                }
            }
            response.accepted = .success(contents)
        }
        return response
    }
}

/// One RPC's audit entry, filled as the call goes and written once.
private final class AuditRecord: Sendable {
    private let logger: Logger
    private let identity: Result<Identity, IdentityRefusal>
    private let method: String
    private let state = Mutex<(jobID: String?, written: Bool)>((nil, false))

    init(logger: Logger, identity: Result<Identity, IdentityRefusal>, method: String) {
        self.logger = logger
        self.identity = identity
        self.method = method
    }

    func noteJob(in message: Any) {
        guard let named = message as? NamesJob else { return }
        // Validated before it is logged: a request's id may hold anything, newlines included.
        let jobID = JobID(named.jobID).map(\.description) ?? "malformed"
        state.withLock { state in
            if state.jobID == nil { state.jobID = jobID }
        }
    }

    func finish(_ error: (any Error)?) {
        let jobID = state.withLock { state -> String?? in
            guard !state.written else { return .none }
            state.written = true
            return .some(state.jobID)
        }
        guard case .some(let job) = jobID else { return }
        let outcome: String
        switch error {
        case nil: outcome = "ok"
        case let error as RPCError: outcome = "\(error.code)"
        case let error as any RPCErrorConvertible: outcome = "\(error.rpcErrorCode)"
        default: outcome = "unknown"
        }
        var fields = ["method": method, "job": job ?? "-", "outcome": outcome]
        switch identity {
        case .success(let identity):
            fields["caller"] = identity.name
            fields["role"] = identity.role?.rawValue ?? "-"
        case .failure(let refusal):
            (fields["caller"], fields["role"]) = ("-", "-")
            fields["refused"] = refusal.reason
        }
        let metadata = fields.mapValues { Logger.MetadataValue.string($0) }
        logger.info("rpc", metadata: metadata)
        // The one place an internal failure's detail is logged: the client got a generic
        // message, the operator gets what failed underneath, with the call it broke.
        switch error {
        case let error as JobWorkerError where error.isInternal:
            logger.error("rpc failed: \(EscapedText.escaped(error.logDescription))", metadata: metadata)
        case let error? where !(error is RPCError) && !(error is any RPCErrorConvertible):
            logger.error("rpc failed: \(EscapedText.escaped(String(describing: error)))", metadata: metadata)
        default:
            break
        }
    }
}

/// Passes responses through, noting the job a response names (StartJob's new job).
private struct NotingWriter<Element: Sendable>: RPCWriterProtocol {
    let writer: RPCWriter<Element>
    let record: AuditRecord

    func write(_ element: Element) async throws {
        record.noteJob(in: element)
        try await writer.write(element)
    }

    func write(contentsOf elements: some Sequence<Element>) async throws {
        for element in elements { try await write(element) }
    }
}
