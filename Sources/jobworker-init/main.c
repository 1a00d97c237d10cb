// jobworker-init: PID 1 of a job's PID namespace.
//
// The worker starts it ahead of time, already in the job's cgroup and in fresh PID, mount,
// network, UTS and IPC namespaces (host name set), with every signal blocked and a control
// socket on fd 3 (job_launcher.h). It waits there for the job, starts it as PID 2 in a session
// of its own — born in the init's cgroup and namespaces — and answers STARTED once the job has
// exec'd (or FAILED with the step and errno); the job runs under the system-call filter the
// worker handed over on fd 4 (read while parked). It then forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT,
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

#include "init_protocol.h"
#include "job_launcher.h"

/// Received descriptors are moved here or above, clear of 0-4.
enum { FIRST_RECEIVED_FD = 10 };

/// The job's system-call filter, read while parked (JW_INIT_FILTER_FD); empty without one.
static struct sock_filter filter[JW_MAX_FILTER_INSTRUCTIONS];
static unsigned short filter_length;

/// Reads the filter the worker handed over, if any, and closes its descriptor. A filter that
/// cannot be read whole is an error: the job must never run without the filter it was meant to.
static int read_filter(void) {
    if (fcntl(JW_INIT_FILTER_FD, F_GETFD) < 0) {
        return 0;  // none given
    }
    size_t size = 0;
    for (;;) {
        ssize_t count = pread(JW_INIT_FILTER_FD, (char *)filter + size, sizeof(filter) - size, (off_t)size);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            return -1;
        }
        if (count == 0) {
            break;
        }
        size += (size_t)count;
        if (size == sizeof(filter)) {
            char extra;
            if (pread(JW_INIT_FILTER_FD, &extra, 1, (off_t)size) != 0) {
                return -1;  // longer than the kernel accepts
            }
            break;
        }
    }
    close(JW_INIT_FILTER_FD);
    if (size == 0 || size % sizeof(filter[0]) != 0) {
        return -1;
    }
    filter_length = (unsigned short)(size / sizeof(filter[0]));
    return 0;
}

/// The job as received: decoded by init_protocol.c, which accepts nothing malformed.
struct job {
    jw_job spec;
    int stdin_fd;
    int output_fd;
    int exit_record_fd;
};

static int receive_job(struct job *job) {
    char *strings;
    int descriptors[3];
    if (jw_receive_job(JW_INIT_CONTROL_FD, FIRST_RECEIVED_FD, &job->spec, &strings, descriptors) < 0) {
        return -1;
    }
    job->stdin_fd = descriptors[0];
    job->output_fd = descriptors[1];
    job->exit_record_fd = descriptors[2];
    return 0;
}

/// Starts the job with the worker's own launcher (jw_spawn): a vfork-style clone that returns
/// once the job has exec'd, or with the step that failed; the job gets its own session, stdio,
/// user, working directory, no other descriptor, and every signal at its default, unblocked.
static int spawn_job(const struct job *job, pid_t *pid, jw_spawn_result *result) {
    jw_spawn_attributes attributes;
    memset(&attributes, 0, sizeof(attributes));
    attributes.path = job->spec.path;
    attributes.argv = job->spec.argv;
    attributes.envp = job->spec.envp;
    attributes.working_directory = job->spec.working_directory[0] != 0 ? job->spec.working_directory : NULL;
    attributes.stdin_fd = job->stdin_fd;
    attributes.output_fd = job->output_fd;
    attributes.cgroup_fd = -1;
    attributes.control_fd = -1;
    attributes.change_credentials = job->spec.change_credentials;
    attributes.uid = job->spec.uid;
    attributes.gid = job->spec.gid;
    attributes.exec_fd = -1;
    attributes.seccomp_filter_fd = -1;
    attributes.seccomp_filter = filter_length > 0 ? filter : NULL;
    attributes.seccomp_filter_length = filter_length;
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
    if (read_filter() < 0) {
        return 126;  // the worker sees the init gone and starts the job with a fresh one
    }

    struct job job;
    memset(&job, 0, sizeof(job));
    if (receive_job(&job) < 0) {
        return 0;  // the worker went away, or closed the pool
    }
    pid_t pid;
    jw_spawn_result result;
    if (spawn_job(&job, &pid, &result) < 0) {
        jw_send_reply(JW_INIT_CONTROL_FD, JW_REPLY_FAILED, result.failed_step, result.error, 0);
        return 127;
    }
    close(job.stdin_fd);
    close(job.output_fd);
    jw_send_reply(JW_INIT_CONTROL_FD, JW_REPLY_STARTED, 0, 0, 0);

    int status = supervise(pid);
    if (job.exit_record_fd >= 0) {
        char text[JW_EXIT_RECORD_MAX];
        ssize_t ignored = write(job.exit_record_fd, text, jw_format_exit_record(status, text));
        (void)ignored;
        close(job.exit_record_fd);
    }
    jw_send_reply(JW_INIT_CONTROL_FD, JW_REPLY_ENDED, 0, 0, status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
