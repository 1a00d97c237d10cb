import CJobLauncher
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The worker's end of one jobworker-init's control socket, and everything the init says on it:
/// STARTED or FAILED once, after the job was handed over, and ENDED with the job's wait status
/// before it exits. The wire format is `init_protocol.h`'s, decoded and checked there.
final class InitChannel: Sendable {
    /// What became of a job handed to an init.
    enum StartReply: Sendable, Equatable {
        /// The job has exec'd.
        case started
        /// The job could not be started: the step that failed and its errno. The init exits.
        case failed(step: jw_step, errno: Int32)
        /// The init is gone (killed while parked) or answered garbage: try another.
        case gone
    }

    private let socket: FileDescriptor

    /// How long an init may take to say STARTED or FAILED (it answers within milliseconds): one
    /// that was stopped or wedged from outside is given up as gone rather than holding the start.
    static let replyTimeout: Duration = .seconds(10)

    init(socket: consuming FileDescriptor) {
        self.socket = socket
    }

    /// Hands the job (`header` and `strings`, encoded by `jw_encode_job`) with its descriptors
    /// to the init and waits until it has exec'd the job or failed to.
    func start(
        header: jw_job_header, strings: UnsafePointer<CChar>, stdin: Int32, output: Int32, exitRecord: Int32,
        dropRecord: Int32
    ) -> StartReply {
        var header = header
        var reply = jw_init_reply()
        guard jw_send_job(socket.rawValue, &header, strings, stdin, output, exitRecord, dropRecord) == 0,
            waitForReply(),
            jw_receive_reply(socket.rawValue, 0, &reply) == 0
        else { return .gone }
        switch reply.kind {
        case Int32(JW_REPLY_STARTED.rawValue): return .started
        case Int32(JW_REPLY_FAILED.rawValue): return .failed(step: jw_step(UInt32(reply.step)), errno: reply.error)
        default: return .gone
        }
    }

    /// Whether a reply (or the init's end) arrives within `replyTimeout`.
    private func waitForReply() -> Bool {
        var descriptor = pollfd(fd: socket.rawValue, events: Int16(POLLIN), revents: 0)
        let deadline = ContinuousClock.now + Self.replyTimeout
        while true {
            let left = Int32(max(0, (deadline - .now).timeInterval * 1000))
            let ready = poll(&descriptor, 1, left)
            if ready > 0 { return true }
            if ready == 0 || errno != EINTR { return false }
        }
    }

    /// How the job ended, if the init reported it before exiting (it does unless it was killed
    /// with its namespace). Does not wait.
    func reportedEnd() -> Termination? {
        var reply = jw_init_reply()
        guard jw_receive_reply(socket.rawValue, Int32(MSG_DONTWAIT), &reply) == 0,
            reply.kind == Int32(JW_REPLY_ENDED.rawValue)
        else { return nil }
        return Termination(waitStatus: reply.status)
    }

    /// How the job ended, as its init wrote it to the exit record at `path` (which outlives the
    /// worker), if it did.
    static func readExitRecord(at path: String) -> Termination? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        var status: Int32 = 0
        let parsed = data.withUnsafeBytes { bytes in
            jw_parse_exit_record(bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count, &status)
        }
        return parsed == 0 ? Termination(waitStatus: status) : nil
    }
}
