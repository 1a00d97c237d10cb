import Foundation
import GRPCCore
import Synchronization

/// Writes a job's output to stdout, byte for byte, from an offset until the job has ended and
/// every byte was written. When the connection drops it waits for the transport to reconnect
/// (no polling: a call that waits for the channel to be ready) and resumes at the next offset,
/// so nothing is lost or written twice.
struct OutputFollower {
    let client: Connection.Client
    let connection: Connection
    let jobID: String

    /// Follows the output from `offset`; returns the offset after the last byte.
    func follow(from start: UInt64 = 0) async throws -> UInt64 {
        let position = Position(start)
        var backoff = Backoff()
        while true {
            do {
                try await client.streamJobOutput(
                    .with {
                        $0.id = jobID
                        $0.offset = position.offset
                    }
                ) { response in
                    for try await message in response.messages {
                        let offset = position.offset
                        guard message.offset == offset else {
                            throw CommandFailure("the server sent output at byte \(message.offset), expected \(offset)")
                        }
                        Terminal.writeOutput(message.data)
                        position.advance(by: message.data.count)
                    }
                }
                return position.offset
            } catch let error as RPCError where error.code == .unavailable {
                let offset = position.offset
                if let what = error.serverNotServing {
                    // The server answers but does not serve yet, or any more: wait for it.
                    Terminal.writeError(
                        "jobctl: \(connection.address) \(what) at byte \(offset); resuming once it serves\n")
                    try await backoff.pause()
                } else {
                    Terminal.writeError(
                        "jobctl: connection to \(connection.address) lost at byte \(offset); reconnecting\n")
                    backoff.reset()
                }
                try await waitUntilReachable(offset: offset)
            }
        }
    }

    /// The offset of the next byte to write, shared with the stream's response handler.
    private final class Position: Sendable {
        private let value: Mutex<UInt64>
        init(_ offset: UInt64) { value = Mutex(offset) }
        var offset: UInt64 { value.withLock { $0 } }
        func advance(by count: Int) { value.withLock { $0 += UInt64(count) } }
    }

    /// Waits, up to `Backoff.reconnectTimeout`, for a status call to get through again.
    private func waitUntilReachable(offset: UInt64) async throws {
        do {
            _ = try await Backoff.untilAnswered { options in
                try await client.getJobStatus(.with { $0.id = jobID }, options: options)
            }
        } catch let failure as RPCError {
            throw CommandFailure(
                "\(connection.describe(failure)); output was complete up to byte \(offset)")
        }
    }
}
