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
