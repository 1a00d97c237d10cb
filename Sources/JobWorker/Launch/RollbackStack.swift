/// The undo steps of a transaction under way, run in reverse order if it fails.
///
/// Each step that creates something pushes how to undo it right after it succeeds; a failure
/// anywhere unwinds exactly what exists at that moment, and a success drops the stack.
struct RollbackStack: Sendable {
    private var undoSteps: [@Sendable () async -> Void] = []

    mutating func push(_ undo: @escaping @Sendable () async -> Void) {
        undoSteps.append(undo)
    }

    /// Undoes every step, newest first.
    func unwind() async {
        for undo in undoSteps.reversed() { await undo() }
    }
}
