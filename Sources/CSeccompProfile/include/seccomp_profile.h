// The system-call filter every job runs under: what Docker's default profile denies an
// unprivileged container, as one list (seccomp_profile.c), built once at startup with libseccomp
// and handed to the launcher as a raw classic-BPF program.
#ifndef JOBWORKER_SECCOMP_PROFILE_H
#define JOBWORKER_SECCOMP_PROFILE_H

#include <linux/filter.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Builds the profile for the native architecture. System calls of a foreign architecture
/// (i386 or x32 on x86_64) kill the process. Returns 0 with a malloc'd program in `*program`
/// (`*length` instructions; free it), or -1 with errno set.
int jw_build_seccomp_profile(int allow_io_uring, struct sock_filter **program, unsigned short *length);

/// A sealed memfd holding `program` (no one can change it afterwards), close-on-exec, for the
/// inits to read their job's filter from. Returns the descriptor, or -1 with errno set.
int jw_seal_seccomp_profile(const struct sock_filter *program, unsigned short length);

/// The system calls the profile refuses outright with EPERM, NULL-terminated; names this
/// architecture lacks are skipped. (Also refused: namespace flags of clone and unshare, setns,
/// personality other than the default ones, io_uring unless allowed, and clone3 with ENOSYS.)
const char *const *jw_seccomp_denied_system_calls(void);

/// The io_uring system calls, refused with EPERM unless the operator allows them.
const char *const *jw_seccomp_io_uring_system_calls(void);

/// The native number of system call `name`, or -1 if this architecture has none.
int jw_seccomp_system_call_number(const char *name);

#ifdef __cplusplus
}
#endif

#endif
