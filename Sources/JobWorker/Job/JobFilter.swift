/// Which jobs a listing wants: every condition given must hold (an empty one holds for all).
public struct JobFilter: Sendable, Hashable {
    /// Any of these states; empty: any state.
    public var states: Set<JobState>
    /// Every one of these labels, with exactly this value.
    public var labels: [String: String]
    /// Jobs of this owner only.
    public var owner: String?
    /// Jobs of exactly this name only.
    public var name: String?

    public init(
        states: Set<JobState> = [], labels: [String: String] = [:], owner: String? = nil, name: String? = nil
    ) {
        self.states = states
        self.labels = labels
        self.owner = owner
        self.name = name
    }

    public func matches(_ status: JobStatus) -> Bool {
        (states.isEmpty || states.contains(status.state))
            && labels.allSatisfy { status.labels[$0.key] == $0.value }
            && owner.map { $0.utf8.elementsEqual(status.owner.utf8) } ?? true
            && name.map { $0.utf8.elementsEqual(status.name.utf8) } ?? true
    }
}
