// jobworker-init: PID 1 of a job's PID namespace.
//
// The worker starts it ahead of time, already in the job's cgroup and in fresh PID, mount,
// network, UTS and IPC namespaces (host name set), with every signal blocked and a control
// socket on fd 3 (job_launcher.h). It waits there for the job, starts it as PID 2 in a session
// of its own — born in the init's cgroup and namespaces — and answers STARTED once the job has
// exec'd (or FAILED with the step and errno). The job's stdout and stderr are a pipe the init
// copies into the output log (splice), up to the job's output limit, dropping and counting the
// rest (init_protocol.h). The job runs under the system-call filter the worker handed over on
// fd 4, which the init read and installed on itself while parked (the job inherits it). It then forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT,
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
#include <poll.h>
#include <sys/ioctl.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
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
    // Installed on the init itself, now, while it is parked: the kernel checks and compiles the
    // program once here rather than in every job's start, and the job inherits it. The init
    // needs nothing the filter refuses (it clones with clone when clone3 is refused).
    struct sock_fprog program = {.len = filter_length, .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) < 0) {
        return -1;
    }
    return 0;
}

/// The job as received: decoded by init_protocol.c, which accepts nothing malformed.
struct job {
    jw_job spec;
    int stdin_fd;
    /// The output log: the init alone writes it.
    int output_fd;
    int exit_record_fd;
    int drop_record_fd;
};

static int receive_job(struct job *job) {
    char *strings;
    int descriptors[4];
    if (jw_receive_job(JW_INIT_CONTROL_FD, FIRST_RECEIVED_FD, &job->spec, &strings, descriptors) < 0) {
        return -1;
    }
    job->stdin_fd = descriptors[0];
    job->output_fd = descriptors[1];
    job->exit_record_fd = descriptors[2];
    job->drop_record_fd = descriptors[3];
    return 0;
}

// MARK: - Output: the job's pipe into its log, up to the limit

/// The job writes into a pipe of this size: a burst of output waits there, not in the job.
enum { OUTPUT_PIPE_SIZE = 1 << 20, OUTPUT_CHUNK = 1 << 20, CHUNKS_PER_WAKE = 16 };

struct output {
    int pipe;   // read end; -1 once every writer has closed it
    int log;
    int drop_record;
    uint64_t limit;  // 0: none
    uint64_t kept;
    uint64_t dropped;
    /// The log's file system cannot splice: copy through a buffer instead.
    int copies_by_read;
};

static char buffer[64 * 1024];

/// Reads and discards up to `length` bytes; returns what read(2) returned.
static ssize_t discard(int fd, size_t length) {
    return read(fd, buffer, length < sizeof(buffer) ? length : sizeof(buffer));
}

/// Moves up to `length` bytes through the buffer; returns the count written to `to`, or -1 with
/// errno. Bytes read but refused by `to` (a full disk) are added to `*lost`.
static ssize_t copy_by_read(int from, int to, size_t length, uint64_t *lost) {
    ssize_t count = read(from, buffer, length < sizeof(buffer) ? length : sizeof(buffer));
    ssize_t done = 0;
    while (count > 0 && done < count) {
        ssize_t written = write(to, buffer + done, (size_t)(count - done));
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            int error = written < 0 ? errno : EIO;
            *lost += (uint64_t)(count - done);
            if (done > 0) {
                return done;
            }
            errno = error;
            return -1;
        }
        done += written;
    }
    return count <= 0 ? count : done;
}

/// Moves what the pipe holds into the log (splice: no copy through the init), dropping and
/// counting what is past the limit, or what the log refuses (a full disk). Returns after
/// CHUNKS_PER_WAKE chunks so that signals are never starved, or when the pipe is empty (or, at
/// its end, closed).
static void copy_output(struct output *output) {
    for (int chunk = 0; chunk < CHUNKS_PER_WAKE && output->pipe >= 0; chunk++) {
        ssize_t moved;
        int dropping = output->limit != 0 && output->kept >= output->limit;
        if (!dropping) {
            size_t length = OUTPUT_CHUNK;
            if (output->limit != 0 && output->limit - output->kept < length) {
                length = (size_t)(output->limit - output->kept);
            }
            moved = output->copies_by_read
                        ? copy_by_read(output->pipe, output->log, length, &output->dropped)
                        : splice(output->pipe, NULL, output->log, NULL, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (moved > 0) {
                output->kept += (uint64_t)moved;
                continue;
            }
            if (moved < 0 && errno == EINVAL && !output->copies_by_read) {
                output->copies_by_read = 1;
                continue;
            }
            if (moved < 0 && errno != EAGAIN && errno != EINTR) {
                dropping = 1;  // the log refuses more: drop rather than block the job
            }
        }
        if (dropping) {
            moved = discard(output->pipe, OUTPUT_CHUNK);
            if (moved > 0) {
                output->dropped += (uint64_t)moved;
                if (output->drop_record >= 0) {
                    ssize_t ignored = pwrite(output->drop_record, &output->dropped, sizeof(output->dropped), 0);
                    (void)ignored;
                }
                continue;
            }
        }
        if (moved == 0) {
            close(output->pipe);  // every writer is gone
            output->pipe = -1;
        }
        return;  // empty for now (EAGAIN), or interrupted
    }
}

/// Starts the job with the worker's own launcher (jw_spawn): a vfork-style clone that returns
/// once the job has exec'd, or with the step that failed; the job gets its own session, stdio
/// (stdout and stderr: `output_pipe`), user, working directory, no other descriptor, and every
/// signal at its default, unblocked.
static int spawn_job(const struct job *job, int output_pipe, pid_t *pid, jw_spawn_result *result) {
    jw_spawn_attributes attributes;
    memset(&attributes, 0, sizeof(attributes));
    attributes.path = job->spec.path;
    attributes.argv = job->spec.argv;
    attributes.envp = job->spec.envp;
    attributes.working_directory = job->spec.working_directory[0] != 0 ? job->spec.working_directory : NULL;
    attributes.stdin_fd = job->stdin_fd;
    attributes.output_fd = output_pipe;
    attributes.cgroup_fd = -1;
    attributes.control_fd = -1;
    attributes.change_credentials = job->spec.change_credentials;
    attributes.uid = job->spec.uid;
    attributes.gid = job->spec.gid;
    attributes.exec_fd = -1;
    attributes.seccomp_filter_fd = -1;
    // The job inherits the filter the init installed on itself while parked.
    attributes.seccomp_filter = NULL;
    if (jw_spawn(&attributes, result) < 0) {
        return -1;
    }
    close(result->pidfd);
    *pid = result->pid;
    return 0;
}

static int forwarded(int signal_number) {
    return signal_number == SIGTERM || signal_number == SIGINT || signal_number == SIGHUP ||
           signal_number == SIGQUIT || signal_number == SIGUSR1 || signal_number == SIGUSR2 ||
           signal_number == SIGWINCH || signal_number == SIGALRM || signal_number == SIGCONT ||
           signal_number == SIGTSTP;
}

/// What the job gets for a signal the init received: SIGSTOP for SIGTSTP (no process can
/// receive SIGSTOP on another's behalf: the worker asks for it with SIGTSTP), else the same.
static int signal_for_job(int signal_number) {
    return signal_number == SIGTSTP ? SIGSTOP : signal_number;
}

/// Forwards signals, copies output and reaps children until the job has ended; returns its wait
/// status, once the output the job wrote is in the log.
static int supervise(pid_t job, int signals, struct output *output) {
    for (;;) {
        struct pollfd events[2] = {{.fd = signals, .events = POLLIN}, {.fd = output->pipe, .events = POLLIN}};
        if (poll(events, output->pipe >= 0 ? 2 : 1, -1) < 0) {
            continue;
        }
        if (output->pipe >= 0 && events[1].revents != 0) {
            copy_output(output);
        }
        if ((events[0].revents & POLLIN) == 0) {
            continue;
        }
        struct signalfd_siginfo info;
        if (read(signals, &info, sizeof(info)) != (ssize_t)sizeof(info)) {
            continue;
        }
        int signal_number = (int)info.ssi_signo;
        if (forwarded(signal_number)) {
            // To the job's process group; if the job has not called setsid yet, to the job.
            if (kill(-job, signal_for_job(signal_number)) < 0) {
                kill(job, signal_for_job(signal_number));
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
            // What the job wrote before it ended is in the pipe: into the log with it, and no
            // more (a process it left behind could write forever; it ends with the namespace,
            // when the init exits).
            int pending = 0;
            if (output->pipe >= 0 && ioctl(output->pipe, FIONREAD, &pending) < 0) {
                pending = 0;
            }
            uint64_t target = output->kept + output->dropped + (uint64_t)pending;
            while (output->pipe >= 0 && output->kept + output->dropped < target) {
                uint64_t before = output->kept + output->dropped;
                copy_output(output);
                if (output->kept + output->dropped == before) {
                    break;
                }
            }
            close(signals);
            return job_status;
        }
    }
}

int main(void) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    fcntl(JW_INIT_CONTROL_FD, F_SETFD, FD_CLOEXEC);
    // Exec'd through a descriptor, the kernel names the process after it ("5"): name it.
    prctl(PR_SET_NAME, "jobworker-init", 0, 0, 0);
    if (read_filter() < 0) {
        return 126;  // the worker sees the init gone and starts the job with a fresh one
    }

    struct job job;
    memset(&job, 0, sizeof(job));
    if (receive_job(&job) < 0) {
        return 0;  // the worker went away, or closed the pool
    }
    // Before the job exists: without it the init could never learn that the job ended.
    sigset_t all_signals;
    sigfillset(&all_signals);
    int signals = signalfd(-1, &all_signals, SFD_CLOEXEC);
    int output_pipe[2];
    if (signals < 0 || pipe2(output_pipe, O_CLOEXEC) < 0) {
        jw_send_reply(JW_INIT_CONTROL_FD, JW_REPLY_FAILED, JW_STEP_STDIO, errno, 0);
        return 127;
    }
    fcntl(output_pipe[0], F_SETPIPE_SZ, OUTPUT_PIPE_SIZE);  // best effort: the default is 64 KiB
    fcntl(output_pipe[0], F_SETFL, O_NONBLOCK);  // the job's end of it stays blocking
    pid_t pid;
    jw_spawn_result result;
    if (spawn_job(&job, output_pipe[1], &pid, &result) < 0) {
        jw_send_reply(JW_INIT_CONTROL_FD, JW_REPLY_FAILED, result.failed_step, result.error, 0);
        return 127;
    }
    close(job.stdin_fd);
    close(output_pipe[1]);  // the job holds its own
    jw_send_reply(JW_INIT_CONTROL_FD, JW_REPLY_STARTED, 0, 0, 0);

    struct output output = {.pipe = output_pipe[0],
                            .log = job.output_fd,
                            .drop_record = job.drop_record_fd,
                            .limit = job.spec.output_limit};
    int status = supervise(pid, signals, &output);
    close(job.output_fd);
    if (job.drop_record_fd >= 0) {
        close(job.drop_record_fd);
    }
    if (job.exit_record_fd >= 0) {
        char text[JW_EXIT_RECORD_MAX];
        ssize_t ignored = write(job.exit_record_fd, text, jw_format_exit_record(status, text));
        (void)ignored;
        close(job.exit_record_fd);
    }
    jw_send_reply(JW_INIT_CONTROL_FD, JW_REPLY_ENDED, 0, 0, status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
