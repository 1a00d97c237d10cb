import JobWorkerAPI

/// The one-line-per-job table of `list` and `watch`: ID, OWNER, STATE, AGE, COMMAND, in columns
/// at least `widths` wide (the command, last, takes what it needs).
struct JobRowsText {
    private(set) var widths: [Int]

    static let header = ["ID", "OWNER", "STATE", "AGE", "COMMAND"]

    /// Columns as wide as the header and every one of `jobs` need.
    init(fitting jobs: [Jobworker_V1_JobStatus]) {
        widths = Self.header.prefix(4).map(\.count)
        for job in jobs { widen(for: Self.cells(job)) }
    }

    /// Columns of at least these widths, for rows not known yet (a watch).
    init(minimumWidths: [Int]) {
        widths = minimumWidths
        widen(for: Self.header)
    }

    /// The header, in the columns as they are (each is at least as wide as its title).
    func headerLine() -> String { Self.joined(Self.header, widths) }

    /// The job's row; a cell wider than its column widens it for the rows that follow.
    mutating func row(_ job: Jobworker_V1_JobStatus) -> String { line(Self.cells(job)) }

    private mutating func line(_ cells: [String]) -> String {
        widen(for: cells)
        return Self.joined(cells, widths)
    }

    private static func joined(_ cells: [String], _ widths: [Int]) -> String {
        let padded = zip(cells.prefix(4), widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
        return (padded + [cells[4]]).joined(separator: "   ")
    }

    private mutating func widen(for cells: [String]) {
        for column in widths.indices { widths[column] = max(widths[column], cells[column].count) }
    }

    private static func cells(_ job: Jobworker_V1_JobStatus) -> [String] {
        [
            EscapedText.escaped(job.id), EscapedText.escaped(job.owner), job.outcome,
            job.hasStartedAt ? age(of: job.startedAt.date) : "-", job.commandLine,
        ]
    }
}
