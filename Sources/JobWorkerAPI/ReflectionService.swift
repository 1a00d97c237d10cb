import Foundation
import GRPCCore
import SwiftProtobuf

/// gRPC server reflection, `grpc.reflection.v1` and the `v1alpha` name older tools still ask
/// for, so that grpcurl, grpc_cli, Postman or grpcio-reflection list and describe the API over
/// mTLS without a copy of our protos. It serves the descriptors protoc wrote at code-generation
/// time (`EmbeddedDescriptors`): what it describes is exactly what the generated code speaks.
///
/// Any client with a certificate of the client CA may ask: the API's shape is no secret (the
/// proto is public), and reflection tells nothing about jobs.
public struct ReflectionService: Sendable {
    /// Every file by name, serialized, with the names of the files it imports.
    private let files: [String: (bytes: Data, dependencies: [String])]
    /// The file that defines each fully qualified symbol (services, methods, messages, enums,
    /// fields and values are all symbols a client may ask about).
    private let fileOfSymbol: [String: String]
    /// The services the server offers, fully qualified.
    public let serviceNames: [String]
    /// When it drains, open reflection streams end with UNAVAILABLE: none holds a shutdown.
    private let phase: ServerPhase

    public init(phase: ServerPhase = ServerPhase()) {
        self.phase = phase
        let data = Data(base64Encoded: EmbeddedDescriptors.fileDescriptorSetBase64, options: .ignoreUnknownCharacters)
        // Generated at build time by protoc: if it does not parse, the build is broken.
        let set = try! Google_Protobuf_FileDescriptorSet(serializedBytes: data!)
        var files: [String: (Data, [String])] = [:]
        var symbols: [String: String] = [:]
        var services: [String] = []
        for file in set.file {
            files[file.name] = (try! file.serializedData(), file.dependency)
            let prefix = file.package.isEmpty ? "" : file.package + "."
            for service in file.service {
                services.append(prefix + service.name)
                symbols[prefix + service.name] = file.name
                for method in service.method { symbols[prefix + service.name + "." + method.name] = file.name }
            }
            for message in file.messageType { Self.index(message, prefix: prefix, file: file.name, into: &symbols) }
            for enumeration in file.enumType {
                Self.index(enumeration, prefix: prefix, file: file.name, into: &symbols)
            }
        }
        self.files = files
        self.fileOfSymbol = symbols
        self.serviceNames = services.sorted()
    }

    private static func index(
        _ message: Google_Protobuf_DescriptorProto, prefix: String, file: String, into symbols: inout [String: String]
    ) {
        let name = prefix + message.name
        symbols[name] = file
        for field in message.field { symbols[name + "." + field.name] = file }
        for nested in message.nestedType { index(nested, prefix: name + ".", file: file, into: &symbols) }
        for enumeration in message.enumType { index(enumeration, prefix: name + ".", file: file, into: &symbols) }
    }

    private static func index(
        _ enumeration: Google_Protobuf_EnumDescriptorProto, prefix: String, file: String,
        into symbols: inout [String: String]
    ) {
        symbols[prefix + enumeration.name] = file
        // Enum values are scoped like the enum itself, as in protobuf's own symbol tables.
        for value in enumeration.value { symbols[prefix + value.name] = file }
    }

    /// The answer to one request.
    func respond(to request: Grpc_Reflection_V1_ServerReflectionRequest) -> Grpc_Reflection_V1_ServerReflectionResponse
    {
        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        switch request.messageRequest {
        case .listServices:
            response.listServicesResponse = .with {
                $0.service = serviceNames.map { name in .with { $0.name = name } }
            }
        case .fileByFilename(let name):
            response.messageResponse = fileResponse(name, missing: "no file \(EscapedText.quoted(name))")
        case .fileContainingSymbol(let symbol):
            response.messageResponse = fileResponse(
                fileOfSymbol[symbol], missing: "no symbol \(EscapedText.quoted(symbol))")
        case .allExtensionNumbersOfType(let type):
            if fileOfSymbol[type] != nil {
                // Our protos declare no extensions.
                response.allExtensionNumbersResponse = .with { $0.baseTypeName = type }
            } else {
                response.messageResponse = Self.notFound("no message type \(EscapedText.quoted(type))")
            }
        case .fileContainingExtension(let extensionRequest):
            response.messageResponse = Self.notFound(
                "no extension \(extensionRequest.extensionNumber) of \(EscapedText.quoted(extensionRequest.containingType))"
            )
        case nil:
            response.errorResponse = .with {
                $0.errorCode = Int32(RPCError.Code.invalidArgument.rawValue)
                $0.errorMessage = "the request asks for nothing"
            }
        }
        return response
    }

    /// The file `name` and every file it imports, directly or not (each once, the file first),
    /// as clients need them to build its descriptors.
    private func fileResponse(_ name: String?, missing: String)
        -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse
    {
        guard let name, files[name] != nil else { return Self.notFound(missing) }
        var order: [String] = []
        var pending = [name]
        while let next = pending.popLast() {
            guard !order.contains(next), let file = files[next] else { continue }
            order.append(next)
            pending.append(contentsOf: file.dependencies.reversed())
        }
        return .fileDescriptorResponse(.with { $0.fileDescriptorProto = order.compactMap { files[$0]?.bytes } })
    }

    private static func notFound(_ message: String) -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse
    {
        .errorResponse(
            .with {
                $0.errorCode = Int32(RPCError.Code.notFound.rawValue)
                $0.errorMessage = message
            })
    }

    /// Answers each request of the stream in turn; `convert` maps a version's messages to v1's.
    func serve<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ requests: RPCAsyncSequence<Request, any Error>, _ writer: RPCWriter<Response>, context: ServerContext
    ) async throws {
        try await phase.bound(context) {
            for try await request in requests {
                // v1alpha's messages are v1's under another name: the same fields and numbers.
                let v1 = try Grpc_Reflection_V1_ServerReflectionRequest(
                    serializedBytes: try request.serializedBytes() as [UInt8])
                let answer = respond(to: v1)
                try await writer.write(try Response(serializedBytes: try answer.serializedBytes() as [UInt8]))
            }
        }
    }

    /// The service under its v1 name.
    public var v1: some Grpc_Reflection_V1_ServerReflection.SimpleServiceProtocol { ReflectionV1(core: self) }
    /// The service under its v1alpha name.
    public var v1alpha: some Grpc_Reflection_V1alpha_ServerReflection.SimpleServiceProtocol {
        ReflectionV1alpha(core: self)
    }
}

private struct ReflectionV1: Grpc_Reflection_V1_ServerReflection.SimpleServiceProtocol {
    let core: ReflectionService

    func serverReflectionInfo(
        request: RPCAsyncSequence<Grpc_Reflection_V1_ServerReflectionRequest, any Error>,
        response: RPCWriter<Grpc_Reflection_V1_ServerReflectionResponse>, context: ServerContext
    ) async throws {
        try await core.serve(request, response, context: context)
    }
}

private struct ReflectionV1alpha: Grpc_Reflection_V1alpha_ServerReflection.SimpleServiceProtocol {
    let core: ReflectionService

    func serverReflectionInfo(
        request: RPCAsyncSequence<Grpc_Reflection_V1alpha_ServerReflectionRequest, any Error>,
        response: RPCWriter<Grpc_Reflection_V1alpha_ServerReflectionResponse>, context: ServerContext
    ) async throws {
        try await core.serve(request, response, context: context)
    }
}
