import GRPCCore

/// A caller's role, from its client certificate's Subject OU.
public enum Role: String, Sendable, Hashable, CaseIterable {
    case admin, user, viewer
}

/// Who is calling: the client certificate's Subject CN, and its role (nil when the OU names no
/// known role: such a caller may do nothing).
public struct Identity: Sendable, Hashable {
    public var name: String
    public var role: Role?

    public init(name: String, role: Role?) {
        self.name = name
        self.role = role
    }
}

/// Which jobs a permitted call may touch.
public enum JobScope: Sendable, Hashable {
    /// Every job.
    case all
    /// Only the caller's own jobs (and StartJob starts jobs the caller owns).
    case own
}

/// The one authorization table: for each role, the RPCs it may call and on which jobs.
///
/// Deny by default: a role or method missing from the table gets PERMISSION_DENIED. Applied by
/// `AuthorizationInterceptor` to every RPC before any handler runs; handlers only apply the
/// resulting `JobScope` when they look a job up (`Grant.mayAccess`).
public struct AuthorizationPolicy: Sendable {
    public var table: [Role: [MethodDescriptor: JobScope]]

    public init(table: [Role: [MethodDescriptor: JobScope]] = AuthorizationPolicy.standard) {
        self.table = table
    }

    /// admin: everything on every job. user: start jobs, and stop, inspect, stream and list its
    /// own. viewer: inspect, stream and list every job; no start, no stop.
    public static let standard: [Role: [MethodDescriptor: JobScope]] = {
        typealias Method = Jobworker_V1_JobWorker.Method
        let all = [
            Method.StartJob.descriptor, Method.StopJob.descriptor, Method.GetJobStatus.descriptor,
            Method.StreamJobOutput.descriptor, Method.ListJobs.descriptor, Method.WaitJob.descriptor,
            Method.SignalJob.descriptor, Method.WatchJobs.descriptor,
        ]
        let reading = [
            Method.GetJobStatus.descriptor, Method.StreamJobOutput.descriptor, Method.ListJobs.descriptor,
            Method.WaitJob.descriptor, Method.WatchJobs.descriptor,
        ]
        return [
            .admin: Dictionary(uniqueKeysWithValues: all.map { ($0, JobScope.all) }),
            .user: Dictionary(uniqueKeysWithValues: all.map { ($0, JobScope.own) }),
            .viewer: Dictionary(uniqueKeysWithValues: reading.map { ($0, JobScope.all) }),
        ]
    }()

    /// The scope `identity` has for `method`, or nil when the call is denied.
    public func scope(for identity: Identity, calling method: MethodDescriptor) -> JobScope? {
        identity.role.flatMap { table[$0]?[method] }
    }
}

/// What the interceptor granted a call; handlers read it from `ServerContext.transportSpecific`.
public struct Grant: ServerContext.TransportSpecific {
    public let identity: Identity
    public let scope: JobScope

    /// Whether this call may see or act on a job owned by `owner`.
    public func mayAccess(jobOwnedBy owner: String) -> Bool {
        scope == .all || owner == identity.name
    }
}

/// Finds the caller's identity. The server's resolver reads what the connection's verified
/// client certificate gave at its handshake; tests of the service logic over an in-process
/// transport supply their own.
public protocol IdentityResolver: Sendable {
    /// The caller's identity, or why it has none (the call is UNAUTHENTICATED with that reason).
    func identity(of context: ServerContext, metadata: Metadata) -> Result<Identity, IdentityRefusal>
}

/// Authenticates and authorizes every RPC in one place, before any handler runs.
public struct AuthorizationInterceptor: ServerInterceptor {
    public let resolver: any IdentityResolver
    public let policy: AuthorizationPolicy

    public init(resolver: any IdentityResolver, policy: AuthorizationPolicy = AuthorizationPolicy()) {
        self.resolver = resolver
        self.policy = policy
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let identity: Identity
        switch resolver.identity(of: context, metadata: request.metadata) {
        case .success(let resolved): identity = resolved
        case .failure(let refusal): throw RPCError(code: .unauthenticated, message: refusal.reason)
        }
        guard let scope = policy.scope(for: identity, calling: context.descriptor) else {
            let role = identity.role?.rawValue ?? "no known role"
            throw RPCError(
                code: .permissionDenied, message: "\(identity.name) (\(role)) may not call \(context.descriptor.method)"
            )
        }
        var context = context
        context.transportSpecific = Grant(identity: identity, scope: scope)
        return try await next(request, context)
    }
}

extension ServerContext {
    /// The grant of the authorization interceptor. A handler reached without one refuses: the
    /// server was assembled without the interceptor, and nothing may pass unchecked.
    var grant: Grant {
        get throws {
            guard let grant = transportSpecific as? Grant else {
                throw RPCError(code: .permissionDenied, message: "the call was not authorized")
            }
            return grant
        }
    }
}
