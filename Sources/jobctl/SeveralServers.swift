import Foundation

/// What one server answered, or why it did not.
struct ServerAnswer<Value: Sendable>: Sendable {
    let connection: Connection
    let result: Result<Value, CommandFailure>
}

/// Asks every server at once (`--context a,b`, `--all-contexts`), each through its own
/// connection, and returns each one's answer in the order the servers were given: one that does
/// not answer is a failure among the answers, never the end of the others.
func askEach<Value: Sendable>(
    _ servers: [Connection], _ call: @escaping @Sendable (Connection.Client) async throws -> Value
) async -> [ServerAnswer<Value>] {
    await withTaskGroup(of: (Int, ServerAnswer<Value>).self) { group in
        for (index, server) in servers.enumerated() {
            group.addTask {
                do {
                    return (
                        index, ServerAnswer(connection: server, result: .success(try await server.withClient(call)))
                    )
                } catch let failure as CommandFailure {
                    return (index, ServerAnswer(connection: server, result: .failure(failure)))
                } catch {
                    return (index, ServerAnswer(connection: server, result: .failure(CommandFailure(error))))
                }
            }
        }
        var answers: [(Int, ServerAnswer<Value>)] = []
        for await answer in group { answers.append(answer) }
        return answers.sorted { $0.0 < $1.0 }.map(\.1)
    }
}
