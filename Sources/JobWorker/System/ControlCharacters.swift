extension Unicode.GeneralCategory {
    /// C0 and C1 controls, and the invisible formatting characters (bidirectional overrides,
    /// zero-width joiners) that make text read differently from what it is: what no name a
    /// tenant chooses may hold, and what is escaped wherever a tenant's text is shown.
    public var isControlOrFormat: Bool {
        self == .control || self == .format || self == .lineSeparator || self == .paragraphSeparator
    }
}
