import CSeccompProfile

#if canImport(Glibc)
    import Glibc
#endif

/// The jobs' system-call filter as a raw classic-BPF program, built once with libseccomp, so that
/// a start installs it with one system call and no library code runs between clone and exec.
///
/// Kept twice: in memory, for jobs the worker starts itself, and in a sealed memfd that every
/// parked init reads while it waits (`JW_INIT_FILTER_FD`), off the start path.
final class SeccompProgram: @unchecked Sendable {
    // Immutable after init: the instructions and the memfd are only read.
    let instructions: UnsafeMutablePointer<sock_filter>
    let count: UInt16
    private let memfd: FileDescriptor

    init(_ filter: SystemCallFilter) throws(JobWorkerError) {
        var program: UnsafeMutablePointer<sock_filter>?
        var length: UInt16 = 0
        guard jw_build_seccomp_profile(filter == .standardAllowingIOUring ? 1 : 0, &program, &length) == 0,
            let program
        else {
            throw JobWorkerError.system("building the jobs' system-call filter (libseccomp)")
        }
        let sealed = jw_seal_seccomp_profile(program, length)
        guard sealed >= 0 else {
            let error = JobWorkerError.system("sealing the jobs' system-call filter")
            free(program)
            throw error
        }
        (instructions, count) = (program, length)
        memfd = FileDescriptor(adopting: sealed)
    }

    /// The sealed copy an init reads its filter from.
    var descriptor: Int32 { memfd.rawValue }

    deinit { free(instructions) }
}
