// jobworker-init: PID 1 of a job's PID namespace.
//
// The worker starts it ahead of time, already in the job's cgroup and in fresh PID, mount,
// network, UTS and IPC namespaces (host name set), with every signal blocked and a control
// socket on fd 3 (job_launcher.h). It waits there for the job, starts it as PID 2 in a session
// of its own — born in the init's cgroup and namespaces — and answers STARTED once the job has
// exec'd (or FAILED with the step and errno). It then forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT,
// SIGUSR1 and SIGUSR2 to the job's process group, reaps every process that ends up as its child
// (orphans included), and when the job has ended writes the job's wait status to the exit record
// the worker gave it (a file in the state directory: it outlives the worker), sends ENDED with
// the status and exits. If the worker went away meanwhile, the init carries on regardless.
// Its exit ends the namespace: the kernel kills whatever is left. If the worker goes away before
// sending a job, the init exits.
//
// Plain C with no runtime, linked statically: cheap to start.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "job_launcher.h"

/// Received descriptors are moved here or above, clear of 0-3.
enum { FIRST_RECEIVED_FD = 10 };

struct job {
    char *path;
    char **argv;
    char **envp;
    char *directory;
    int stdin_fd;
    int output_fd;
    int exit_record_fd;
    int change_credentials;
    uint32_t uid;
    uint32_t gid;
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
        char buffer[CMSG_SPACE(sizeof(int) * 3)];
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
        (rights->cmsg_len != CMSG_LEN(sizeof(int) * 2) && rights->cmsg_len != CMSG_LEN(sizeof(int) * 3))) {
        return -1;
    }
    int descriptors[3] = {-1, -1, -1};
    memcpy(descriptors, CMSG_DATA(rights), rights->cmsg_len - CMSG_LEN(0));
    job->stdin_fd = move_up(descriptors[0]);
    job->output_fd = move_up(descriptors[1]);
    job->exit_record_fd = descriptors[2] >= 0 ? move_up(descriptors[2]) : -1;
    job->change_credentials = header.change_credentials != 0;
    job->uid = header.uid;
    job->gid = header.gid;

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
    uint32_t total = 1 + header.argc + header.envc + 1;
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
        } else {
            job->directory = cursor;
        }
        cursor += strlen(cursor) + 1;
    }
    return 0;
}

/// Starts the job with the worker's own launcher (jw_spawn): a vfork-style clone that returns
/// once the job has exec'd, or with the step that failed; the job gets its own session, stdio,
/// user, working directory, no other descriptor, and every signal at its default, unblocked.
static int spawn_job(const struct job *job, pid_t *pid, jw_spawn_result *result) {
    jw_spawn_attributes attributes;
    memset(&attributes, 0, sizeof(attributes));
    attributes.path = job->path;
    attributes.argv = job->argv;
    attributes.envp = job->envp;
    attributes.working_directory = job->directory[0] != 0 ? job->directory : NULL;
    attributes.stdin_fd = job->stdin_fd;
    attributes.output_fd = job->output_fd;
    attributes.cgroup_fd = -1;
    attributes.control_fd = -1;
    attributes.exit_record_fd = -1;
    attributes.change_credentials = job->change_credentials;
    attributes.uid = job->uid;
    attributes.gid = job->gid;
    if (jw_spawn(&attributes, result) < 0) {
        return -1;
    }
    close(result->pidfd);
    *pid = result->pid;
    return 0;
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
    pid_t pid;
    jw_spawn_result result;
    if (spawn_job(&job, &pid, &result) < 0) {
        reply(JW_REPLY_FAILED, result.failed_step, result.error, 0);
        return 127;
    }
    close(job.stdin_fd);
    close(job.output_fd);
    reply(JW_REPLY_STARTED, 0, 0, 0);

    int status = supervise(pid);
    if (job.exit_record_fd >= 0) {
        char text[16];
        int length = 0;
        unsigned int value = (unsigned int)status;
        char digits[12];
        int count = 0;
        do {
            digits[count++] = (char)('0' + value % 10);
            value /= 10;
        } while (value > 0);
        while (count > 0) {
            text[length++] = digits[--count];
        }
        text[length++] = '\n';
        ssize_t ignored = write(job.exit_record_fd, text, (size_t)length);
        (void)ignored;
        close(job.exit_record_fd);
    }
    reply(JW_REPLY_ENDED, 0, 0, status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
