// jobworker-init: PID 1 of a job's PID namespace.
//
// argv: jobworker-init PATH ARGV0 [ARGS...]; the environment is the job's.
// Inherited: every signal blocked (so none sent before we wait is lost), the error pipe on fd 3
// and the status pipe on fd 4 (job_launcher.h).
//
// It forks and execs the job as PID 2 in a session of its own, forwards SIGTERM, SIGINT, SIGHUP,
// SIGQUIT, SIGUSR1 and SIGUSR2 to the job's process group, reaps every process that ends up as
// its child (orphans included), and when the job has ended writes the job's wait status to the
// status pipe and exits with the job's exit code (128 + signal for a signal: an init cannot die
// by its own signal). Its exit ends the namespace: the kernel kills whatever is left.
//
// Plain C with no runtime, linked statically: it is exec'd once per job and must be cheap.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../CJobLauncher/include/job_launcher.h"

static void report_failure(jw_step step, int error) {
    int32_t message[2] = {(int32_t)step, (int32_t)error};
    ssize_t ignored = write(JW_INIT_ERROR_FD, message, sizeof(message));
    (void)ignored;
}

static int forwarded(int signal_number) {
    switch (signal_number) {
    case SIGTERM:
    case SIGINT:
    case SIGHUP:
    case SIGQUIT:
    case SIGUSR1:
    case SIGUSR2:
        return 1;
    default:
        return 0;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        report_failure(JW_STEP_EXEC, EINVAL);
        return 127;
    }
    extern char **environ;
    const char *path = argv[1];
    char **job_argv = &argv[2];

    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    // The job inherits the error pipe only until it execs.
    fcntl(JW_INIT_ERROR_FD, F_SETFD, FD_CLOEXEC);
    fcntl(JW_INIT_STATUS_FD, F_SETFD, FD_CLOEXEC);

    pid_t job = fork();
    if (job < 0) {
        report_failure(JW_STEP_INIT_FORK, errno);
        return 127;
    }
    if (job == 0) {
        setsid();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, job_argv, environ);
        report_failure(JW_STEP_EXEC, errno);
        _exit(127);
    }
    close(JW_INIT_ERROR_FD);

    int job_status = 0;
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
        int job_ended = 0;
        for (;;) {
            int status;
            pid_t reaped = waitpid(-1, &status, WNOHANG);
            if (reaped <= 0) {
                break;
            }
            if (reaped == job) {
                job_status = status;
                job_ended = 1;
            }
        }
        if (job_ended) {
            break;
        }
    }

    int32_t raw = (int32_t)job_status;
    ssize_t ignored = write(JW_INIT_STATUS_FD, &raw, sizeof(raw));
    (void)ignored;
    return WIFEXITED(job_status) ? WEXITSTATUS(job_status) : 128 + WTERMSIG(job_status);
}
