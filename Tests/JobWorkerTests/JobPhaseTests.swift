import Foundation
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// The job state machine on its own: every transition, with time passed in.
@Suite("Job phase")
struct JobPhaseTests {
    let start = ContinuousClock.now
    let date = WallClockTime(nanosecondsSince1970: 1_000_000_000_123)

    @Test("a stop sends SIGTERM once and schedules SIGKILL at the end of the grace period")
    func stopRequested() {
        var phase = JobPhase()
        let actions = phase.requestStop(gracePeriod: .seconds(10), now: start, hasExited: false)
        #expect(actions == [.signal(SIGTERM), .scheduleEscalation(at: start + .seconds(10))])
        #expect(phase.stage == .stopping(deadline: start + .seconds(10)))
        #expect(phase.stopRequested)
        #expect(!phase.killedByWorker)
        // A second, longer stop changes nothing; a shorter one moves the deadline, without SIGTERM.
        #expect(phase.requestStop(gracePeriod: .seconds(60), now: start, hasExited: false) == [])
        #expect(
            phase.requestStop(gracePeriod: .seconds(2), now: start, hasExited: false)
                == [.scheduleEscalation(at: start + .seconds(2))])
        #expect(phase.stage == .stopping(deadline: start + .seconds(2)))
    }

    @Test("a stop with no grace period kills at once, also when it shortens a pending stop")
    func immediateStop() {
        var phase = JobPhase()
        #expect(phase.requestStop(gracePeriod: .zero, now: start, hasExited: false) == [.killEverything])
        #expect(phase.killedByWorker)
        var pending = JobPhase()
        _ = pending.requestStop(gracePeriod: .seconds(10), now: start, hasExited: false)
        #expect(
            pending.requestStop(gracePeriod: .zero, now: start, hasExited: false) == [
                .cancelEscalation, .killEverything,
            ])
    }

    @Test("a stop of a process that has already exited, or of an ended job, does nothing")
    func stopAfterExit() throws {
        var exited = JobPhase()
        #expect(exited.requestStop(gracePeriod: .seconds(1), now: start, hasExited: true) == [])
        #expect(!exited.stopRequested)
        var ended = JobPhase()
        _ = try ended.processEnded(termination: .exited(code: 0), at: date)
        _ = try ended.recordEnd(oomKills: 0)
        #expect(ended.requestStop(gracePeriod: .seconds(1), now: start, hasExited: false) == [])
        #expect(ended.reportedState == .exited)
    }

    @Test("escalation kills only once the deadline has come, and only during a stop")
    func escalated() throws {
        var phase = JobPhase()
        #expect(throws: JobPhase.InvalidTransition.self) { try phase.escalate(now: start) }
        _ = phase.requestStop(gracePeriod: .seconds(5), now: start, hasExited: false)
        #expect(throws: JobPhase.InvalidTransition.self) { try phase.escalate(now: start + .seconds(4)) }
        #expect(try phase.escalate(now: start + .seconds(5)) == [.killEverything])
        #expect(phase.killedByWorker)
        _ = try phase.processEnded(termination: .signaled(SIGKILL), at: date)
        #expect(throws: JobPhase.InvalidTransition.self) { try phase.escalate(now: start + .seconds(6)) }
    }

    @Test("the process's end cancels a pending escalation, and happens once")
    func processEnded() throws {
        var stopping = JobPhase()
        _ = stopping.requestStop(gracePeriod: .seconds(5), now: start, hasExited: false)
        #expect(try stopping.processEnded(termination: .signaled(SIGTERM), at: date) == [.cancelEscalation])
        #expect(stopping.stage == .exited)
        #expect(stopping.endedAt == date)
        #expect(stopping.reportedState == .running)  // until the end is recorded
        #expect(throws: JobPhase.InvalidTransition.self) {
            try stopping.processEnded(termination: .exited(code: 0), at: date)
        }
        var running = JobPhase()
        #expect(try running.processEnded(termination: .exited(code: 3), at: date) == [])
        #expect(!running.isAlive)
        #expect(running.kill() == [])
    }

    @Test("the end is recorded once, only after the process ended")
    func endRecorded() throws {
        var phase = JobPhase()
        #expect(throws: JobPhase.InvalidTransition.self) { try phase.recordEnd(oomKills: 0) }
        _ = try phase.processEnded(termination: .exited(code: 3), at: date)
        #expect(try phase.recordEnd(oomKills: 0) == .exited)
        #expect(phase.stage == .ended(.exited))
        #expect(throws: JobPhase.InvalidTransition.self) { try phase.recordEnd(oomKills: 0) }
    }

    @Test("adopting resumes a recorded stop without SIGTERM, and is only possible first")
    func adopted() throws {
        var plain = JobPhase()
        #expect(try plain.adopt(recordedStopDeadline: nil, now: start, hasExited: false) == [])
        #expect(!plain.stopRequested)
        #expect(throws: JobPhase.InvalidTransition.self) {
            try plain.adopt(recordedStopDeadline: nil, now: start, hasExited: false)
        }
        var resumed = JobPhase()
        let deadline = start + .seconds(3)
        #expect(
            try resumed.adopt(recordedStopDeadline: deadline, now: start, hasExited: false)
                == [.scheduleEscalation(at: deadline)])
        #expect(resumed.stage == .stopping(deadline: deadline))
        var overdue = JobPhase()
        #expect(
            try overdue.adopt(recordedStopDeadline: start, now: start + .seconds(1), hasExited: false)
                == [.killEverything])
        // A stop recorded before the process ended counts, however soon after it ended.
        var ended = JobPhase()
        #expect(try ended.adopt(recordedStopDeadline: deadline, now: start, hasExited: true) == [])
        #expect(ended.stopRequested)
        var late = JobPhase()
        _ = late.requestStop(gracePeriod: .seconds(1), now: start, hasExited: false)
        #expect(throws: JobPhase.InvalidTransition.self) {
            try late.adopt(recordedStopDeadline: nil, now: start, hasExited: false)
        }
    }

    @Test("a kill outside a stop is remembered, so an adopted job that left no record died of it")
    func killed() throws {
        var phase = JobPhase()
        #expect(phase.kill() == [.killEverything])
        #expect(phase.killedByWorker)
        #expect(!phase.stopRequested)
        _ = try phase.processEnded(termination: .signaled(SIGKILL), at: date)
        #expect(try phase.recordEnd(oomKills: 0) == .killed)
    }

    @Test("the final state: a stop request wins, then the OOM killer, then the signal or the exit")
    func finalState() {
        #expect(JobPhase.finalState(termination: nil, stopRequested: true, oomKills: 1) == .lost)
        #expect(JobPhase.finalState(termination: .exited(code: 0), stopRequested: true, oomKills: 0) == .stopped)
        #expect(JobPhase.finalState(termination: .signaled(SIGKILL), stopRequested: true, oomKills: 2) == .stopped)
        #expect(JobPhase.finalState(termination: .signaled(SIGKILL), stopRequested: false, oomKills: 1) == .oomKilled)
        #expect(JobPhase.finalState(termination: .signaled(SIGKILL), stopRequested: false, oomKills: 0) == .killed)
        #expect(JobPhase.finalState(termination: .signaled(SIGSEGV), stopRequested: false, oomKills: 1) == .killed)
        #expect(JobPhase.finalState(termination: .exited(code: 1), stopRequested: false, oomKills: 1) == .exited)
    }
}
