import ArgumentParser
import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

extension JobUser {
    /// `--job-user`: NAME or UID, optionally followed by `:GROUP` or `:GID`; without a group, the
    /// user's primary group (or, for a number with no passwd entry, the same number). "nobody"
    /// is 65534:65534 on a host whose passwd lacks it.
    static func parse(_ text: String) throws -> JobUser {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let user = parts[0]
        var userID: UInt32
        var groupID: UInt32
        if let number = UInt32(user) {
            userID = number
            groupID = getpwuid(number)?.pointee.pw_gid ?? number
        } else if let entry = getpwnam(user) {
            userID = entry.pointee.pw_uid
            groupID = entry.pointee.pw_gid
        } else if user == "nobody" {
            (userID, groupID) = (JobUser.nobody.userID, JobUser.nobody.groupID)
        } else {
            throw ValidationError("--job-user: no user \"\(user)\" on this host (give a name, a UID, or UID:GID)")
        }
        if parts.count == 2 {
            let group = parts[1]
            if let number = UInt32(group) {
                groupID = number
            } else if let entry = getgrnam(group) {
                groupID = entry.pointee.gr_gid
            } else {
                throw ValidationError("--job-user: no group \"\(group)\" on this host")
            }
        }
        return JobUser(userID: userID, groupID: groupID)
    }
}
