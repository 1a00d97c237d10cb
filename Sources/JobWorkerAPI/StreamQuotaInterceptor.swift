import GRPCCore
import Synchronization

/// Caps the RPCs one identity has open at once, across all its connections.
///
/// The per-connection stream cap alone let one user hold 500 output streams (and 543
/// descriptors) over five connections. Past the cap a call is RESOURCE_EXHAUSTED at once, and
/// other identities are served as before. Put it after `AuthorizationInterceptor`: a refused
/// call holds nothing.
public struct StreamQuotaInterceptor: ServerInterceptor {
    private let open: OpenCalls

    public init(limit: Int = 128) {
        open = OpenCalls(limit: limit)
    }

    /// RPCs one identity may have open at once.
    public var limit: Int { open.limit.load(ordering: .relaxed) }

    /// Changes the cap (a reload): calls open past a lower one go on; new ones are refused until
    /// the identity is below it.
    public func setLimit(_ limit: Int) {
        open.limit.store(limit, ordering: .relaxed)
    }

    /// How many calls were refused at the cap, since the server started.
    public var refusedCalls: Int { open.refused.load(ordering: .relaxed) }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let name = try context.grant.identity.name
        let limit = limit
        guard let permit = open.take(for: name, limit: limit) else {
            throw RPCError(
                code: .resourceExhausted,
                message: "\(name) has \(limit) calls open, the most one identity may have: end one first")
        }
        var response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            permit.release()
            throw error
        }
        guard case .success(var contents) = response.accepted else {
            permit.release()
            return response
        }
        // The call stays open until its last response is written: held by the producer, and
        // released when it finishes or, should it never run, when it is dropped.
        let produce = contents.producer
        contents.producer = { writer in
            defer { permit.release() }
            return try await produce(writer)
        }
        response.accepted = .success(contents)
        return response
    }
}

/// The calls each identity has open.
private final class OpenCalls: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    let refused = Atomic<Int>(0)
    let limit: Atomic<Int>

    init(limit: Int) {
        self.limit = Atomic(limit)
    }

    func take(for name: String, limit: Int) -> Permit? {
        let taken = counts.withLock { counts -> Bool in
            guard counts[name, default: 0] < limit else { return false }
            counts[name, default: 0] += 1
            return true
        }
        guard taken else {
            refused.add(1, ordering: .relaxed)
            return nil
        }
        return Permit(calls: self, name: name)
    }

    fileprivate func give(back name: String) {
        counts.withLock { counts in
            let left = counts[name, default: 1] - 1
            counts[name] = left > 0 ? left : nil
        }
    }
}

/// One open call's place under its identity's cap, given back exactly once.
private final class Permit: Sendable {
    private let calls: OpenCalls
    private let name: String
    private let released = Atomic<Bool>(false)

    init(calls: OpenCalls, name: String) {
        self.calls = calls
        self.name = name
    }

    func release() {
        if !released.exchange(true, ordering: .relaxed) { calls.give(back: name) }
    }

    deinit { release() }
}
