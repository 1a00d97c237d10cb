import Foundation

/// A job's identity: a random UUID version 4, written in lowercase.
///
/// Random ids are not guessable, so they can be shown to other users without giving away how
/// many jobs exist; parsing is strict so a malformed id never reaches the file system.
public struct JobID: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let uuid: UUID

    /// A new random id.
    public init() {
        uuid = UUID()
    }

    /// Parses the canonical textual form (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`, any case).
    public init?(_ text: String) {
        guard text.utf8.count == 36, let uuid = UUID(uuidString: text) else { return nil }
        let bytes = uuid.uuid
        guard bytes.6 >> 4 == 4, bytes.8 >> 6 == 0b10 else { return nil }
        self.uuid = uuid
    }

    public var description: String { uuid.uuidString.lowercased() }

    /// The first eight hexadecimal digits, for tables and host names.
    public var shortDescription: String { String(description.prefix(8)) }

    public static func < (lhs: JobID, rhs: JobID) -> Bool { lhs.description < rhs.description }
}
