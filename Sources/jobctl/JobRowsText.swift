import JobWorkerAPI

/// The one-line-per-job table of `list` and `watch`: ID, OWNER, STATE, AGE, COMMAND (after a
/// SERVER column when several servers answer), in columns at least `widths` wide (the command,
/// last, takes what it needs).
struct JobRowsText {
    private(set) var widths: [Int]
    let showsServer: Bool

    private var header: [String] { (showsServer ? ["SERVER"] : []) + ["ID", "OWNER", "STATE", "AGE", "COMMAND"] }

    /// Columns as wide as the header and every one of `jobs` need.
    init(fitting jobs: [(server: String?, job: Jobworker_V1_JobStatus)], showsServer: Bool = false) {
        self.showsServer = showsServer
        widths = []
        widths = header.dropLast().map(\.count)
        for (server, job) in jobs { widen(for: cells(job, server: server)) }
    }

    /// Columns of at least these widths (ID to AGE), for rows not known yet (a watch).
    init(minimumWidths: [Int], showsServer: Bool = false) {
        self.showsServer = showsServer
        widths = (showsServer ? [6] : []) + minimumWidths
        widen(for: header)
    }

    /// The header, in the columns as they are (each is at least as wide as its title).
    func headerLine() -> String { Self.joined(header, widths) }

    /// The job's row; a cell wider than its column widens it for the rows that follow.
    mutating func row(_ job: Jobworker_V1_JobStatus, server: String? = nil) -> String {
        let cells = cells(job, server: server)
        widen(for: cells)
        return Self.joined(cells, widths)
    }

    private static func joined(_ cells: [String], _ widths: [Int]) -> String {
        let padded = zip(cells.dropLast(), widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
        return (padded + [cells.last ?? ""]).joined(separator: "   ")
    }

    private mutating func widen(for cells: [String]) {
        for column in widths.indices { widths[column] = max(widths[column], cells[column].count) }
    }

    private func cells(_ job: Jobworker_V1_JobStatus, server: String?) -> [String] {
        (showsServer ? [EscapedText.escaped(server ?? "-")] : []) + [
            EscapedText.escaped(job.id), EscapedText.escaped(job.owner), job.outcome,
            job.hasStartedAt ? age(of: job.startedAt.date) : "-", job.commandLine,
        ]
    }
}
