import GRPCCore
import GRPCProtobuf
import SwiftProtobuf

/// The largest request message of each method, checked before it is decoded.
public struct RequestLimits: Sendable, Hashable {
    /// StartJob, which carries a command line: `--max-request-bytes`, 4 MiB by default (gRPC's
    /// usual receive limit). The transport refuses larger messages of any method.
    public var startJobBytes = 4 << 20
    /// Every other method: its request is a job id and a few numbers.
    public var otherBytes = 64 << 10

    public init(startJobBytes: Int = 4 << 20, otherBytes: Int = 64 << 10) {
        self.startJobBytes = startJobBytes
        self.otherBytes = otherBytes
    }
}

extension JobWorkerService {
    /// Registers the methods with this service's decoding: a size limit per method, errors that
    /// say what was wrong with a request (`RequestDeserializer`), a request stream of other than
    /// exactly one message refused as INVALID_ARGUMENT (gRPC answers INTERNAL for it), and
    /// output streamed as `OutputChunk`s.
    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias Method = Jobworker_V1_JobWorker.Method
        router.registerHandler(
            forMethod: Method.StartJob.descriptor,
            deserializer: RequestDeserializer<Jobworker_V1_StartJobRequest>(limit: requestLimits.startJobBytes),
            serializer: ProtobufSerializer<Jobworker_V1_StartJobResponse>()
        ) { request, context in
            StreamingServerResponse(single: try await startJob(request: try await .single(request), context: context))
        }
        router.registerHandler(
            forMethod: Method.StopJob.descriptor,
            deserializer: RequestDeserializer<Jobworker_V1_StopJobRequest>(limit: requestLimits.otherBytes),
            serializer: ProtobufSerializer<Jobworker_V1_StopJobResponse>()
        ) { request, context in
            StreamingServerResponse(single: try await stopJob(request: try await .single(request), context: context))
        }
        router.registerHandler(
            forMethod: Method.GetJobStatus.descriptor,
            deserializer: RequestDeserializer<Jobworker_V1_GetJobStatusRequest>(limit: requestLimits.otherBytes),
            serializer: ProtobufSerializer<Jobworker_V1_GetJobStatusResponse>()
        ) { request, context in
            StreamingServerResponse(
                single: try await getJobStatus(request: try await .single(request), context: context))
        }
        router.registerHandler(
            forMethod: Method.StreamJobOutput.descriptor,
            deserializer: RequestDeserializer<Jobworker_V1_StreamJobOutputRequest>(limit: requestLimits.otherBytes),
            serializer: OutputChunkSerializer()
        ) { request, context in
            let single = try await ServerRequest.single(request)
            return StreamingServerResponse(of: OutputChunk.self) { writer in
                try await streamOutput(request: single.message, context: context) { try await writer.write($0) }
                return [:]
            }
        }
        router.registerHandler(
            forMethod: Method.ListJobs.descriptor,
            deserializer: RequestDeserializer<Jobworker_V1_ListJobsRequest>(limit: requestLimits.otherBytes),
            serializer: ProtobufSerializer<Jobworker_V1_ListJobsResponse>()
        ) { request, context in
            StreamingServerResponse(single: try await listJobs(request: try await .single(request), context: context))
        }
        router.registerHandler(
            forMethod: Method.SignalJob.descriptor,
            deserializer: RequestDeserializer<Jobworker_V1_SignalJobRequest>(limit: requestLimits.otherBytes),
            serializer: ProtobufSerializer<Jobworker_V1_SignalJobResponse>()
        ) { request, context in
            StreamingServerResponse(single: try await signalJob(request: try await .single(request), context: context))
        }
        router.registerHandler(
            forMethod: Method.WaitJob.descriptor,
            deserializer: RequestDeserializer<Jobworker_V1_WaitJobRequest>(limit: requestLimits.otherBytes),
            serializer: ProtobufSerializer<Jobworker_V1_WaitJobResponse>()
        ) { request, context in
            StreamingServerResponse(single: try await waitJob(request: try await .single(request), context: context))
        }
        router.registerHandler(
            forMethod: Method.WatchJobs.descriptor,
            deserializer: RequestDeserializer<Jobworker_V1_WatchJobsRequest>(limit: requestLimits.otherBytes),
            serializer: ProtobufSerializer<Jobworker_V1_WatchJobsResponse>()
        ) { request, context in
            let single = try await ServerRequest.single(request)
            return StreamingServerResponse(of: Jobworker_V1_WatchJobsResponse.self) { writer in
                try await watchJobs(request: single.message, response: writer, context: context)
                return [:]
            }
        }
    }
}

extension ServerRequest {
    /// The one message of a unary request stream; INVALID_ARGUMENT for none or several.
    static func single(_ request: StreamingServerRequest<Message>) async throws -> ServerRequest<Message> {
        var messages = request.messages.makeAsyncIterator()
        guard let message = try await messages.next() else {
            throw RPCError(code: .invalidArgument, message: "the request holds no message")
        }
        guard try await messages.next() == nil else {
            throw RPCError(code: .invalidArgument, message: "the request holds more than one message")
        }
        return ServerRequest(metadata: request.metadata, message: message)
    }
}
