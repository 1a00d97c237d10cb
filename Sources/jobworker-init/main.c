// jobworker-init: PID 1 of a job's PID namespace.
//
// The worker starts it ahead of time, in fresh PID, mount, network, UTS and IPC namespaces, with
// every signal blocked and a control socket on fd 3 (job_launcher.h). It waits there for one job,
// then, in order: sets the host name, joins the job's cgroups (so the job is born in them),
// starts the job as PID 2 in a session of its own, and answers STARTED once the job has exec'd
// (or FAILED with the step and errno). It then forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT,
// SIGUSR1 and SIGUSR2 to the job's process group, reaps every process that ends up as its child
// (orphans included), and when the job has ended sends ENDED with the job's wait status and exits.
// Its exit ends the namespace: the kernel kills whatever is left. If the worker goes away before
// sending a job, the init exits.
//
// Plain C with no runtime, linked statically: cheap to start.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../CJobLauncher/include/job_launcher.h"

/// Received descriptors are moved here or above, clear of 0-3.
enum { FIRST_RECEIVED_FD = 10 };

struct job {
    char *path;
    char **argv;
    char **envp;
    char *directory;
    char *hostname;
    int stdin_fd;
    int output_fd;
    int cgroup_fds[JW_MAX_CGROUP_FDS];
    int cgroup_fd_count;
    int cgroup_is_directory;
};

static void reply(int32_t kind, int32_t step, int32_t error, int32_t status) {
    jw_init_reply message = {.kind = kind, .step = step, .error = error, .status = status};
    ssize_t ignored = send(JW_INIT_CONTROL_FD, &message, sizeof(message), MSG_NOSIGNAL);
    (void)ignored;
}

static int read_all(int fd, char *data, size_t length) {
    while (length > 0) {
        ssize_t count = read(fd, data, length);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count <= 0) {
            return -1;
        }
        data += count;
        length -= (size_t)count;
    }
    return 0;
}

static int move_up(int fd) {
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, FIRST_RECEIVED_FD);
    close(fd);
    return moved;
}

/// Waits for the worker's job. Returns 0, or -1 if the worker went away or sent garbage.
static int receive_job(struct job *job) {
    jw_job_header header;
    union {
        char buffer[CMSG_SPACE(sizeof(int) * (2 + JW_MAX_CGROUP_FDS))];
        struct cmsghdr align;
    } control;
    struct iovec part = {.iov_base = &header, .iov_len = sizeof(header)};
    struct msghdr message = {
        .msg_iov = &part, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof(control)};
    ssize_t received;
    do {
        received = recvmsg(JW_INIT_CONTROL_FD, &message, MSG_WAITALL | MSG_CMSG_CLOEXEC);
    } while (received < 0 && errno == EINTR);
    struct cmsghdr *rights = CMSG_FIRSTHDR(&message);
    if (received != (ssize_t)sizeof(header) || rights == NULL || rights->cmsg_type != SCM_RIGHTS ||
        header.cgroup_fd_count > JW_MAX_CGROUP_FDS ||
        rights->cmsg_len != CMSG_LEN(sizeof(int) * (2 + header.cgroup_fd_count))) {
        return -1;
    }
    int descriptors[2 + JW_MAX_CGROUP_FDS];
    memcpy(descriptors, CMSG_DATA(rights), sizeof(int) * (2 + header.cgroup_fd_count));
    job->stdin_fd = move_up(descriptors[0]);
    job->output_fd = move_up(descriptors[1]);
    job->cgroup_fd_count = (int)header.cgroup_fd_count;
    job->cgroup_is_directory = (int)header.cgroup_is_directory;
    for (int i = 0; i < job->cgroup_fd_count; i++) {
        job->cgroup_fds[i] = move_up(descriptors[2 + i]);
    }

    char *strings = malloc(header.strings_size + 1);
    job->argv = calloc(header.argc + 1, sizeof(char *));
    job->envp = calloc(header.envc + 1, sizeof(char *));
    if (strings == NULL || job->argv == NULL || job->envp == NULL ||
        read_all(JW_INIT_CONTROL_FD, strings, header.strings_size) < 0) {
        return -1;
    }
    strings[header.strings_size] = 0;
    char *cursor = strings;
    char *end = strings + header.strings_size;
    uint32_t total = 1 + header.argc + header.envc + 2;
    for (uint32_t index = 0; index < total; index++) {
        if (cursor >= end) {
            return -1;
        }
        if (index == 0) {
            job->path = cursor;
        } else if (index <= header.argc) {
            job->argv[index - 1] = cursor;
        } else if (index <= header.argc + header.envc) {
            job->envp[index - 1 - header.argc] = cursor;
        } else if (index == total - 2) {
            job->directory = cursor;
        } else {
            job->hostname = cursor;
        }
        cursor += strlen(cursor) + 1;
    }
    return 0;
}

/// Joins the job's cgroups, so that the job is born in them: v1 hands over one `cgroup.procs`
/// per hierarchy, v2 the job's cgroup directory.
static int join_cgroups(const struct job *job) {
    for (int i = 0; i < job->cgroup_fd_count; i++) {
        int procs = job->cgroup_is_directory ? openat(job->cgroup_fds[i], "cgroup.procs", O_WRONLY | O_CLOEXEC)
                                             : job->cgroup_fds[i];
        if (procs < 0 || write(procs, "0", 1) != 1) {
            return -1;
        }
        if (job->cgroup_is_directory) {
            close(procs);
        }
    }
    return 0;
}

/// Starts the job with posix_spawn: glibc clones with CLONE_VM | CLONE_VFORK, so this returns
/// once the job has exec'd (or with the reason it could not), with no page tables copied and no
/// extra wake-up. The job gets its own session, stdio, working directory, no other descriptor,
/// and default, unblocked signals.
static int spawn_job(const struct job *job, pid_t *pid) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    posix_spawn_file_actions_adddup2(&actions, job->stdin_fd, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, job->output_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, job->output_fd, STDERR_FILENO);
    if (job->directory[0] != 0) {
        posix_spawn_file_actions_addchdir_np(&actions, job->directory);
    }
    posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int error = posix_spawn(pid, job->path, &actions, &attributes, job->argv, job->envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return error;
}

static int forwarded(int signal_number) {
    return signal_number == SIGTERM || signal_number == SIGINT || signal_number == SIGHUP ||
           signal_number == SIGQUIT || signal_number == SIGUSR1 || signal_number == SIGUSR2;
}

/// Forwards signals and reaps children until the job has ended; returns its wait status.
static int supervise(pid_t job) {
    sigset_t all;
    sigfillset(&all);
    for (;;) {
        siginfo_t info;
        int signal_number = sigwaitinfo(&all, &info);
        if (signal_number < 0) {
            continue;
        }
        if (forwarded(signal_number)) {
            // To the job's process group; if the job has not called setsid yet, to the job.
            if (kill(-job, signal_number) < 0) {
                kill(job, signal_number);
            }
            continue;
        }
        if (signal_number != SIGCHLD) {
            continue;
        }
        int job_status = -1;
        for (;;) {
            int status;
            pid_t reaped = waitpid(-1, &status, WNOHANG);
            if (reaped <= 0) {
                break;
            }
            if (reaped == job) {
                job_status = status;
            }
        }
        if (job_status != -1) {
            return job_status;
        }
    }
}

int main(void) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    fcntl(JW_INIT_CONTROL_FD, F_SETFD, FD_CLOEXEC);

    struct job job;
    memset(&job, 0, sizeof(job));
    if (receive_job(&job) < 0) {
        return 0;  // the worker went away, or closed the pool
    }
    if (job.hostname[0] != 0 && sethostname(job.hostname, strlen(job.hostname)) < 0) {
        reply(JW_REPLY_FAILED, JW_STEP_HOSTNAME, errno, 0);
        return 127;
    }
    if (join_cgroups(&job) < 0) {
        reply(JW_REPLY_FAILED, JW_STEP_CGROUP, errno, 0);
        return 127;
    }
    pid_t pid;
    int error = spawn_job(&job, &pid);
    if (error != 0) {
        reply(JW_REPLY_FAILED, JW_STEP_EXEC, error, 0);
        return 127;
    }
    close(job.stdin_fd);
    close(job.output_fd);
    for (int i = 0; i < job.cgroup_fd_count; i++) {
        close(job.cgroup_fds[i]);
    }
    reply(JW_REPLY_STARTED, 0, 0, 0);

    int status = supervise(pid);
    reply(JW_REPLY_ENDED, 0, 0, status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
