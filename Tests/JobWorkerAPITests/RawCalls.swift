import GRPCCore

@testable import JobWorkerAPI

/// Request and response messages as the bytes on the wire: for requests no generated client
/// would send (invalid UTF-8, truncated fields, several messages for a unary method).
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
        Bytes(message)
    }

    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

/// How a raw call ended.
struct RawOutcome: Sendable, CustomStringConvertible {
    /// nil: OK.
    var code: RPCError.Code?
    var message: String

    var description: String { "\(code.map { "\($0)" } ?? "ok"): \(message)" }
}

/// Every method of the service, for tests that go through all of them.
let allMethods: [MethodDescriptor] = [
    Jobworker_V1_JobWorker.Method.StartJob.descriptor, Jobworker_V1_JobWorker.Method.StopJob.descriptor,
    Jobworker_V1_JobWorker.Method.GetJobStatus.descriptor, Jobworker_V1_JobWorker.Method.StreamJobOutput.descriptor,
    Jobworker_V1_JobWorker.Method.ListJobs.descriptor, Jobworker_V1_JobWorker.Method.WaitJob.descriptor,
    Jobworker_V1_JobWorker.Method.SignalJob.descriptor,
]

extension GRPCClient {
    /// Calls `method` with `messages` as its request stream (raw bytes; any number of them)
    /// and reads every response; returns the status. A call still streaming after `timeout` ends
    /// with DEADLINE_EXCEEDED.
    func rawCall(
        _ method: MethodDescriptor, messages: [[UInt8]], metadata: Metadata = [:], timeout: Duration = .seconds(10)
    ) async -> RawOutcome {
        var options = CallOptions.defaults
        options.timeout = timeout
        let request = StreamingClientRequest<[UInt8]>(metadata: metadata) { writer in
            for message in messages { try await writer.write(message) }
        }
        do {
            try await bidirectionalStreaming(
                request: request, descriptor: method, serializer: RawBytes(), deserializer: RawBytes(),
                options: options
            ) { response in
                for try await _ in response.messages {}
            }
            return RawOutcome(code: nil, message: "")
        } catch let error as RPCError {
            return RawOutcome(code: error.code, message: error.message)
        } catch {
            return RawOutcome(code: .unknown, message: "not an RPCError: \(error)")
        }
    }
}

/// Protobuf wire encoding by hand, for fields a generated message cannot hold.
enum Wire {
    /// A length-delimited field.
    static func field(_ number: UInt64, _ payload: [UInt8]) -> [UInt8] {
        WireFields.varint(number << 3 | 2) + WireFields.varint(UInt64(payload.count)) + payload
    }

    /// Bytes that are not UTF-8.
    static let invalidUTF8: [UInt8] = [0x61, 0xff, 0xfe, 0x80, 0x62]
}
