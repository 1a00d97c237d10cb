import CJobLauncher
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The uids of `JobUsers.pool`: one per running job, never shared, handed out in turn (so that a
/// uid rests as long as possible before it is used again), and given back only once its job's
/// processes are gone and what the kernel keeps per uid beyond them (user keyrings) is cleared.
/// SysV and POSIX IPC objects need no such care: they live in the job's IPC namespace and its own
/// /dev/shm, and end with them.
final class JobUserPool: Sendable {
    let range: ClosedRange<UInt32>
    /// Whether jobs can make keys at all: the system-call filter refuses keyctl, add_key and
    /// request_key, and then there is nothing to clear.
    private let jobsMayUseKeyrings: Bool
    private struct State {
        var inUse: Set<UInt32> = []
        /// Where the search for a free uid starts.
        var next: UInt32
    }
    private let state: Mutex<State>

    /// Refuses a range that overlaps a user or group on this host, or a subordinate id range,
    /// naming the entry.
    init(range: ClosedRange<UInt32>, jobsMayUseKeyrings: Bool = true) throws(JobWorkerError) {
        self.jobsMayUseKeyrings = jobsMayUseKeyrings
        guard range.upperBound < UInt32.max, range.lowerBound > 0 else {
            throw JobWorkerError(.invalidArgument, "job uid range \(Self.text(range)): 0 and 4294967295 are not uids")
        }
        if let clash = Self.clash(with: range) {
            throw JobWorkerError(
                .invalidArgument,
                "job uid range \(Self.text(range)) overlaps \(clash): choose a range no user, group or subordinate id range uses"
            )
        }
        self.range = range
        state = Mutex(State(next: range.lowerBound))
    }

    /// A uid (and the equal gid) no running job has; `.resourceExhausted` when all are taken:
    /// never a shared one.
    func take() throws(JobWorkerError) -> JobUser {
        let range = range
        let taken = state.withLock { state -> UInt32? in
            let count = UInt64(range.upperBound - range.lowerBound) + 1
            guard UInt64(state.inUse.count) < count else { return nil }
            var candidate = state.next
            while state.inUse.contains(candidate) {
                candidate = candidate == range.upperBound ? range.lowerBound : candidate + 1
            }
            state.inUse.insert(candidate)
            state.next = candidate == range.upperBound ? range.lowerBound : candidate + 1
            return candidate
        }
        guard let taken else {
            throw JobWorkerError(
                .resourceExhausted,
                "all \(UInt64(range.upperBound - range.lowerBound) + 1) job users (uids \(Self.text(range))) are in use by running jobs: wait for one to end"
            )
        }
        return JobUser(userID: taken, groupID: taken)
    }

    /// A running job a previous run started keeps its uid.
    func markInUse(_ user: JobUser) {
        guard range.contains(user.userID) else { return }
        _ = state.withLock { $0.inUse.insert(user.userID) }
    }

    /// Gives `user` back for later jobs. Call once the job's processes are gone: clears the
    /// uid's keyrings first (a key would otherwise pass to the next job of that uid).
    func giveBack(_ user: JobUser) {
        guard range.contains(user.userID) else { return }
        if jobsMayUseKeyrings, Self.hasKeys(user.userID) { _ = jw_clear_user_keyrings(user.userID, user.groupID) }
        _ = state.withLock { $0.inUse.remove(user.userID) }
    }

    var inUseCount: Int { state.withLock { $0.inUse.count } }

    /// Whether the kernel holds keys of `uid` (/proc/key-users lists every uid that has any).
    private static func hasKeys(_ uid: UInt32) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/key-users", encoding: .utf8) else { return false }
        return text.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("\(uid):") }
    }

    private static func text(_ range: ClosedRange<UInt32>) -> String { "\(range.lowerBound)-\(range.upperBound)" }

    typealias AccountFiles = (passwd: String, group: String, subuid: String, subgid: String)

    /// The first user, group or subordinate range that `range` overlaps, described.
    static func clash(
        with range: ClosedRange<UInt32>,
        files: AccountFiles = ("/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid")
    ) -> String? {
        for (file, kind) in [(files.passwd, "user"), (files.group, "group")] {
            for fields in entries(of: file) where fields.count > 2 {
                if let id = UInt32(fields[2]), range.contains(id) { return "\(kind) \(fields[0]) (\(id)) in \(file)" }
            }
        }
        for file in [files.subuid, files.subgid] {
            for fields in entries(of: file) where fields.count > 2 {
                guard let first = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0 else { continue }
                let last = first.addingReportingOverflow(count - 1)
                let subordinate = first...(last.overflow ? UInt32.max : last.partialValue)
                if subordinate.overlaps(range) {
                    return "\(fields[0])'s subordinate ids \(text(subordinate)) in \(file)"
                }
            }
        }
        return nil
    }

    private static func entries(of file: String) -> [[String]] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map {
            $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        }
    }
}
