/// The user and group a job runs as.
///
/// A job of the server's own user (root) could read every other job's output and the server's
/// keys in the state directory, move itself out of its cgroup or raise its own limits through
/// `/sys/fs/cgroup`, and signal anything on the host: the isolation and the authorization would
/// hold only against well-behaved jobs. A job of an unprivileged user can do none of that. It
/// also gets no supplementary groups, and no way to gain privileges on exec (setuid programs
/// run without them), as in Nomad's exec driver or docker's `--security-opt no-new-privileges`.
public struct JobUser: Sendable, Hashable, CustomStringConvertible {
    public var userID: UInt32
    public var groupID: UInt32

    public init(userID: UInt32, groupID: UInt32) {
        self.userID = userID
        self.groupID = groupID
    }

    /// User and group 65534, "nobody" and "nogroup" on Debian (the default).
    public static let nobody = JobUser(userID: 65534, groupID: 65534)

    public var description: String { "uid \(userID), gid \(groupID)" }
}

/// Which users jobs run as.
public enum JobUsers: Sendable, Hashable {
    /// A user and group of its own for every running job (the default), from this range of ids
    /// (the gid equals the uid), as systemd's `DynamicUser=` gives: no two running jobs share a
    /// uid, so none can signal, trace or read another's processes and files, and per-uid kernel
    /// limits (inotify instances, pending signals, keyring quota) are per job. A uid is reused
    /// only once its job's processes are gone and its keyrings are cleared.
    case pool(ClosedRange<UInt32>)
    /// Every job as this one user: weaker, since jobs then share everything the kernel keeps
    /// per uid, and may signal each other's processes where they can see them.
    case fixed(JobUser)
    /// The worker's own user: for a worker that is not root (development only).
    case worker

    /// 65,536 ids from 1,900,000,000: above the ranges that Debian, systemd (dynamic users,
    /// 61184–65519; containers, 524288–1879048191) and useradd's subordinate ids hand out.
    public static let defaultRange: ClosedRange<UInt32> = 1_900_000_000...1_900_065_535

    /// The user, group or subordinate id range of this host that `range` overlaps, described
    /// ("user nobody (65534) in /etc/passwd"), or nil: a worker refuses such a pool.
    public static func overlap(of range: ClosedRange<UInt32>) -> String? { JobUserPool.clash(with: range) }
}
