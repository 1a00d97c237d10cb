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
    /// Init: forking the job.
    JW_STEP_INIT_FORK = 14,
    /// Child, new PID namespace: execve of the init.
    JW_STEP_EXEC_INIT = 15,
    /// Child: joining a network namespace prepared ahead of time (setns).
    JW_STEP_JOIN_NETWORK = 16,
} jw_step;

/// Descriptors the init (jobworker-init) receives, at fixed numbers.
enum {
    /// Write end of the error pipe: the job's exec failure is reported here, like the launcher's.
    JW_INIT_ERROR_FD = 3,
    /// Write end of the status pipe: the init writes the job's wait status (an int32) before it
    /// exits, so a job killed by a signal is reported as such (an init cannot die by a signal of
    /// its own).
    JW_INIT_STATUS_FD = 4,
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
    /// Isolation: CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC, or 0.
    /// With CLONE_NEWPID the child execs `init_path` (PID 1 of the namespace) with the argument
    /// vector `init_path, path, argv...`; the init forks and execs the job as PID 2.
    uint64_t namespace_flags;
    /// The init program, with CLONE_NEWPID.
    const char *init_path;
    /// Host name to set, with CLONE_NEWUTS (may be NULL).
    const char *hostname;
    /// Write end of the status pipe handed to the init, with CLONE_NEWPID.
    int status_fd;
    /// A network namespace made by jw_create_network_namespace for this job, or -1. When set,
    /// the child joins it instead of creating one (CLONE_NEWNET is then ignored): creating a
    /// network namespace costs ≈ 0.35 ms (p99 ≈ 6 ms) here, so a pool prepares them ahead.
    int network_namespace_fd;
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

/// Creates a new network namespace with its loopback interface up, and returns a descriptor for
/// it (close-on-exec), or -1 with errno set. The calling thread enters the namespace to create it
/// and returns to its previous one before this returns: call it on a thread of its own.
int jw_create_network_namespace(void);

/// Starts a process as described and returns once it has exec'd its program (0) or failed (-1).
///
/// On failure nothing is left behind: the child, if one was created, has been reaped and every
/// descriptor jw_spawn opened is closed. The calling thread's signal mask is restored.
int jw_spawn(const jw_spawn_attributes *attributes, jw_spawn_result *result);

#ifdef __cplusplus
}
#endif

#endif
