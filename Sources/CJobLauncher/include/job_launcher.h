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

#include <linux/sched.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The step of process creation that failed. Values are stable: they cross the error pipe.
typedef enum jw_step {
    JW_STEP_NONE = 0,
    /// Parent: creating the error pipe or the child stack, or moving descriptors above 2.
    JW_STEP_PREPARE = 1,
    /// Parent: the clone3 system call itself.
    JW_STEP_CLONE = 2,
    /// Child: resetting signal dispositions to their defaults.
    JW_STEP_SIGNALS = 3,
    /// Child: becoming the leader of a new session and process group.
    JW_STEP_SETSID = 4,
    /// Child: joining the job's cgroups by writing to pre-opened cgroup.procs files (cgroup v1).
    JW_STEP_CGROUP = 5,
    /// Child: installing stdin (/dev/null) and stdout/stderr (the output log).
    JW_STEP_STDIO = 6,
    /// Child: changing to the working directory.
    JW_STEP_CHDIR = 7,
    /// Child: marking every other inherited descriptor close-on-exec.
    JW_STEP_CLOSE_FDS = 8,
    /// Child (or init): execve of the target program.
    JW_STEP_EXEC = 9,
    /// Child, new mount namespace: making every mount private (MS_REC | MS_PRIVATE on /).
    JW_STEP_MOUNT_PRIVATE = 10,
    /// Child, new PID and mount namespaces: mounting a fresh /proc.
    JW_STEP_MOUNT_PROC = 11,
    /// Child, new UTS namespace: setting the host name.
    JW_STEP_HOSTNAME = 12,
    /// Child, new network namespace: bringing the loopback interface up.
    JW_STEP_LOOPBACK = 13,
    /// Child, new PID namespace: execve of the init.
    JW_STEP_EXEC_INIT = 15,
    /// Child: becoming the job's user (no supplementary groups, group, user, no new privileges).
    JW_STEP_CREDENTIALS = 16,
} jw_step;

/// The descriptor on which jobworker-init talks to the worker: one end of a stream socketpair.
/// The worker sends one job (jw_send_job); the init answers JW_REPLY_STARTED or JW_REPLY_FAILED
/// once the job has exec'd or failed to, and JW_REPLY_ENDED with the job's wait status before it
/// exits (an init cannot die by a signal of its own, so its exit status cannot carry a signal).
enum { JW_INIT_CONTROL_FD = 3 };

/// What an init reports.
typedef enum jw_reply_kind {
    JW_REPLY_STARTED = 1,
    JW_REPLY_FAILED = 2,
    JW_REPLY_ENDED = 3,
} jw_reply_kind;

typedef struct jw_init_reply {
    int32_t kind;
    /// JW_REPLY_FAILED: the step and its errno.
    int32_t step;
    int32_t error;
    /// JW_REPLY_ENDED: the job's wait status.
    int32_t status;
} jw_init_reply;

/// The fixed part of a job sent to an init, followed by `strings_size` bytes of NUL-terminated
/// strings: path, argv (argc of them), envp (envc of them), working directory. SCM_RIGHTS on the
/// first byte carries the job's stdin and output. The init is already in the job's cgroup and
/// namespaces (host name included): the job is born there.
typedef struct jw_job_header {
    uint32_t argc;
    uint32_t envc;
    uint32_t strings_size;
    /// The job's user and group, applied when change_credentials is 1.
    uint32_t change_credentials;
    uint32_t uid;
    uint32_t gid;
} jw_job_header;

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
    /// JW_INIT_CONTROL_FD, and the init then waits for a job (jw_send_job).
    uint64_t namespace_flags;
    /// Host name to set, with CLONE_NEWUTS (may be NULL).
    const char *hostname;
    /// The init's end of the control socket, with namespaces.
    int control_fd;
    /// jw_send_job only: a file the init writes the job's wait status to (as decimal text)
    /// before it exits, so that the status survives the worker; or -1.
    int exit_record_fd;
    /// 1: the program runs as `uid` and `gid`, with no supplementary groups and no way to gain
    /// privileges on exec (PR_SET_NO_NEW_PRIVS: setuid programs do not raise them). 0: as the
    /// caller. Not applied to an init, which keeps the caller's privileges to start its job.
    int change_credentials;
    uint32_t uid;
    uint32_t gid;
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

/// Hands a job to a waiting init over its control socket: `path`, `argv`, `envp`,
/// `working_directory`, `stdin_fd`, `output_fd`, `exit_record_fd` and the credentials of
/// `attributes` (the rest is ignored).
/// Returns 0, or -1 with errno set.
int jw_send_job(int control_socket, const jw_spawn_attributes *attributes);

/// Reads one reply of an init. `flags` are recv(2) flags (MSG_DONTWAIT to not wait).
/// Returns 0, or -1 with errno set (0 bytes: ECONNRESET).
int jw_receive_reply(int control_socket, int flags, jw_init_reply *reply);

/// Starts a process as described and returns once it has exec'd its program (0) or failed (-1).
///
/// On failure nothing is left behind: the child, if one was created, has been reaped and every
/// descriptor jw_spawn opened is closed. The calling thread's signal mask is restored.
int jw_spawn(const jw_spawn_attributes *attributes, jw_spawn_result *result);

#ifdef __cplusplus
}
#endif

#endif
