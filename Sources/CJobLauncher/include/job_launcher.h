// Process creation for jobworker.
//
// Why C: between clone and exec the child shares the worker's memory (CLONE_VM) and may only make
// async-signal-safe system calls on its own small stack. Swift cannot promise either (it may
// allocate, take locks or touch the runtime), so this step is written in C and kept small.
//
// The child performs a fixed, ordered checklist (see jw_step) and, on the first failure, writes
// {step, errno} to a close-on-exec pipe and exits with status 127. Everything that can be
// validated is validated by the caller before jw_spawn, so a child-side error means the step
// itself failed.
#ifndef JOB_LAUNCHER_H
#define JOB_LAUNCHER_H

#include <linux/filter.h>
#include <linux/sched.h>
#include <stdint.h>
#include <sys/types.h>

#include "init_protocol.h"
#include "job_filesystem.h"

#ifdef __cplusplus
extern "C" {
#endif

/// The steps of process creation, in one table: value (stable: it crosses the error pipe and the
/// init's control socket), name, and the words logs and errors use for it.
#define JW_STEPS(STEP)                                                                                  \
    /* Parent: creating the error pipe or the child stack, or moving descriptors above 2. */           \
    STEP(PREPARE, 1, "prepare")                                                                        \
    /* Parent: the clone3 system call itself. */                                                       \
    STEP(CLONE, 2, "clone3")                                                                           \
    /* Child: resetting signal dispositions to their defaults. */                                     \
    STEP(SIGNALS, 3, "reset signals")                                                                  \
    /* Child: becoming the leader of a new session and process group. */                              \
    STEP(SETSID, 4, "setsid")                                                                          \
    /* Child: joining the job's cgroups through pre-opened cgroup.procs files (cgroup v1). */         \
    STEP(CGROUP, 5, "join cgroup")                                                                     \
    /* Child: installing stdin (/dev/null) and stdout/stderr (the output log). */                     \
    STEP(STDIO, 6, "set up stdio")                                                                     \
    /* Child: changing to the working directory. */                                                   \
    STEP(CHDIR, 7, "chdir")                                                                            \
    /* Child: marking every other inherited descriptor close-on-exec. */                              \
    STEP(CLOSE_FDS, 8, "close inherited descriptors")                                                  \
    /* Child (or init): execve of the target program. */                                              \
    STEP(EXEC, 9, "execve")                                                                            \
    /* Child, new mount namespace: making every mount private (MS_REC | MS_PRIVATE on /). */          \
    STEP(MOUNT_PRIVATE, 10, "make mounts private")                                                     \
    /* Child, new PID and mount namespaces: mounting a fresh /proc. */                                \
    STEP(MOUNT_PROC, 11, "mount /proc")                                                                \
    /* Child, new UTS namespace: setting the host name. */                                            \
    STEP(HOSTNAME, 12, "sethostname")                                                                  \
    /* Child, new network namespace: bringing the loopback interface up. */                           \
    STEP(LOOPBACK, 13, "bring up lo")                                                                  \
    /* Child, new PID namespace: execve of the init. */                                               \
    STEP(EXEC_INIT, 15, "execve of the init")                                                          \
    /* Child: becoming the job's user (no supplementary groups, group, user, no new privileges). */   \
    STEP(CREDENTIALS, 16, "set user and group")                                                        \
    /* Child: the job's resource limits (no core dumps, a bounded number of open files). */           \
    STEP(RLIMITS, 17, "set resource limits")                                                          \
    /* Child: emptying the capability bounding set (when the job runs as another user). */            \
    STEP(CAPABILITIES, 18, "drop capabilities")                                                       \
    /* Child, new PID and mount namespaces: masking and write-protecting host entries of /proc. */    \
    STEP(PROTECT_PROC, 19, "mask /proc paths")                                                         \
    /* Child, new mount namespace: making every host mount read-only, nosuid and nodev. */            \
    STEP(READ_ONLY_HOST, 20, "make the host read-only")                                                \
    /* Child, new mount namespace: binding the operator's host paths and the job's /var/tmp. */       \
    STEP(BIND_PATHS, 21, "bind host paths")                                                            \
    /* Child, new mount namespace: fresh /tmp, /run and /dev (with /dev/pts and /dev/shm). */         \
    STEP(PRIVATE_MOUNTS, 22, "mount private /tmp, /run and /dev")                                      \
    /* Child, new mount namespace: covering the server's files and the hidden host paths. */          \
    STEP(HIDE_PATHS, 23, "hide host paths")                                                            \
    /* Child: installing the system-call filter (seccomp), after no_new_privs. */                     \
    STEP(SECCOMP, 24, "install the system-call filter")

/// The step of process creation that failed.
typedef enum jw_step {
    JW_STEP_NONE = 0,
#define JW_STEP_CASE(name, value, text) JW_STEP_##name = value,
    JW_STEPS(JW_STEP_CASE)
#undef JW_STEP_CASE
} jw_step;

/// The words for `step` (from JW_STEPS), or NULL for a value that is no step.
const char *jw_step_name(jw_step step);

/// The resource limits every job starts with, soft and hard (the job may lower them, never
/// raise them): no core dumps (a dump of one tenant's job, written where another can read it,
/// leaks its memory), and a bounded number of open files (never more than the worker's own hard
/// limit).
enum {
    JW_JOB_CORE_LIMIT = 0,
    JW_JOB_OPEN_FILES_SOFT = 1024,
    JW_JOB_OPEN_FILES_HARD = 65536,
};

/// Every namespace a job gets: PID (with an init), mount, network, UTS and IPC.
static const uint64_t JW_ALL_NAMESPACES = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC;

/// What to start and how. All pointers must stay valid for the duration of jw_spawn.
typedef struct jw_spawn_attributes {
    /// Absolute path of the program to execute (already resolved by the caller).
    const char *path;
    /// NULL-terminated argument vector, argv[0] included.
    char *const *argv;
    /// NULL-terminated environment.
    char *const *envp;
    /// Working directory of the new process, or NULL to keep the worker's.
    const char *working_directory;
    /// Becomes the child's stdin (typically /dev/null).
    int stdin_fd;
    /// Becomes the child's stdout and stderr: one open file, so their relative order is kept.
    int output_fd;
    /// cgroup v2: a directory descriptor for CLONE_INTO_CGROUP, or -1.
    int cgroup_fd;
    /// cgroup v1: descriptors of cgroup.procs files that the child writes "0" to before exec.
    const int *cgroup_procs_fds;
    int cgroup_procs_count;
    /// Isolation: JW_ALL_NAMESPACES or 0. With it, `path` must be jobworker-init: the child execs
    /// it as PID 1 of the new PID namespace with every signal still blocked and `control_fd` on
    /// JW_INIT_CONTROL_FD, and the init then waits for a job (jw_send_job, init_protocol.h).
    uint64_t namespace_flags;
    /// Host name to set, with CLONE_NEWUTS (may be NULL).
    const char *hostname;
    /// The init's end of the control socket, with namespaces.
    int control_fd;
    /// 1: the program runs as `uid` and `gid`, with no supplementary groups and no way to gain
    /// privileges on exec (PR_SET_NO_NEW_PRIVS: setuid programs do not raise them). 0: as the
    /// caller. Not applied to an init, which keeps the caller's privileges to start its job.
    int change_credentials;
    uint32_t uid;
    uint32_t gid;
    /// With namespaces: what the job's filesystem looks like (job_filesystem.h), or NULL to keep
    /// the host's (with a private /proc).
    const jw_job_filesystem *filesystem;
    /// With namespaces: an open descriptor of the init's executable, exec'd with execveat once
    /// the host paths are hidden (the init may live where a job must not look). -1: `path`.
    int exec_fd;
    /// The system-call filter a job runs under (a classic BPF program, built once by the
    /// worker), or NULL. Without namespaces it is installed just before the job's exec; with
    /// them the init gets it as a descriptor (`seccomp_filter_fd`) and installs it in its job.
    const struct sock_filter *seccomp_filter;
    unsigned short seccomp_filter_length;
    /// With namespaces: a descriptor the init reads the filter from (JW_INIT_FILTER_FD), or -1.
    int seccomp_filter_fd;
} jw_spawn_attributes;

/// The outcome of jw_spawn.
typedef struct jw_spawn_result {
    /// Host PID of the new process, or -1.
    pid_t pid;
    /// A close-on-exec pidfd for the new process, or -1. Owned by the caller.
    int pidfd;
    /// The step that failed, or JW_STEP_NONE.
    jw_step failed_step;
    /// errno of the failed step, or 0.
    int error;
} jw_spawn_result;

/// Starts a process as described and returns once it has exec'd its program (0) or failed (-1).
///
/// On failure nothing is left behind: the child, if one was created, has been reaped and every
/// descriptor jw_spawn opened is closed. The calling thread's signal mask is restored.
int jw_spawn(const jw_spawn_attributes *attributes, jw_spawn_result *result);

/// Clears the user keyring and user-session keyring of `uid`, which the kernel keeps after the
/// uid's last process has ended: a child that shares no memory writes (a vfork-style clone on a
/// stack of its own) becomes `uid`:`gid` and clears both; unlinked keys are then collected by the
/// kernel. Returns 0, or -1 with errno set.
int jw_clear_user_keyrings(uint32_t uid, uint32_t gid);

#ifdef __cplusplus
}
#endif

#endif
