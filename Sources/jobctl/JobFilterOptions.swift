import ArgumentParser
import JobWorkerAPI

/// Which jobs `list` and `watch` show: every condition given must hold.
struct JobFilterOptions: ParsableArguments {
    @Option(
        help: "Only jobs in this state (repeatable): running, exited, stopped, killed, oom_killed, timed_out, lost.")
    var state: [String] = []
    @Option(name: [.customShort("l"), .customLong("label")], help: "Only jobs with this label KEY=VALUE (repeatable).")
    var labels: [String] = []
    @Option(help: "Only jobs of this owner (admins and viewers).") var owner: String?
    @Option(help: "Only jobs of this name.") var name: String?

    func validate() throws {
        _ = try filter()
    }

    /// The flags as the request's filter (a usage error for a state that is not one).
    func filter() throws -> Jobworker_V1_JobFilter {
        let states = try state.map { word in
            guard let state = Jobworker_V1_JobState.allCases.first(where: { $0.word == word && $0 != .unspecified })
            else {
                throw ValidationError(
                    "--state \(word): not one of running, exited, stopped, killed, oom_killed, timed_out, lost")
            }
            return state
        }
        let labelPairs = try JobSpecOptions.pairs(labels, flag: "--label")
        return .with {
            $0.states = states
            $0.labels = labelPairs
            $0.owner = owner ?? ""
            $0.name = name ?? ""
        }
    }
}
