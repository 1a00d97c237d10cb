#define _GNU_SOURCE
#include "job_launcher.h"
#include "job_filesystem_setup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/// The highest capability number that could exist; the loop stops at the first one the kernel
/// does not know (EINVAL).
enum { JW_LAST_CAPABILITY = 63 };

/// The child runs on its own small stack: it only makes system calls, then execs.
enum { JW_CHILD_STACK_SIZE = 64 * 1024 };

/// The kernel's struct sigaction (not glibc's): handler, flags, restorer, 64-bit mask.
/// All zeros means SIG_DFL with no flags.
struct jw_kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/// Signals the kernel knows: 1 to 64.
enum { JW_KERNEL_NSIG = 65 };

struct jw_child_context {
    const jw_spawn_attributes *attributes;
    int error_pipe;
};

/// Descriptors jw_spawn may duplicate: stdin, output, control socket, filter, init executable.
enum { JW_OWNED_COUNT = 5 };

/// Descriptors the caller hands over are moved to this one or above, so no dup2 clobbers another.
enum { JW_LOWEST_SOURCE_FD = JW_INIT_FILTER_FD + 1 };

// MARK: - clone3 with a separate stack
//
// glibc 2.36 has no public clone3 wrapper, and with CLONE_VM the child must not return through
// the parent's frames: it starts on `stack`, so it calls `fn(arg)` directly from assembly and
// exits with its result. This is the same technique as glibc's own clone3.S.

typedef int (*jw_child_fn)(void *);

static long jw_clone3(struct clone_args *args, jw_child_fn fn, void *arg) {
#if defined(__x86_64__)
    long ret;
    register jw_child_fn child_fn __asm__("r12") = fn;
    register void *child_arg __asm__("r13") = arg;
    __asm__ volatile(
        "syscall\n\t"
        "testq %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        // Child: a fresh stack (16-byte aligned top), no frame to return to.
        "xorl %%ebp, %%ebp\n\t"
        "movq %%r13, %%rdi\n\t"
        "callq *%%r12\n\t"
        "movl %%eax, %%edi\n\t"
        "movl %[exit_nr], %%eax\n\t"
        "syscall\n\t"
        "ud2\n\t"
        "1:\n\t"
        : "=a"(ret)
        : "a"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)), "r"(child_fn), "r"(child_arg),
          [exit_nr] "i"(SYS_exit)
        : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x0 __asm__("x0") = (long)args;
    register long x1 __asm__("x1") = (long)sizeof(*args);
    register long x8 __asm__("x8") = SYS_clone3;
    register jw_child_fn child_fn __asm__("x19") = fn;
    register void *child_arg __asm__("x20") = arg;
    __asm__ volatile(
        "svc #0\n\t"
        "cbnz x0, 1f\n\t"
        "mov x29, xzr\n\t"
        "mov x30, xzr\n\t"
        "mov x0, x20\n\t"
        "blr x19\n\t"
        "mov x8, %[exit_nr]\n\t"
        "svc #0\n\t"
        "brk #0\n\t"
        "1:\n\t"
        : "+r"(x0)
        : "r"(x1), "r"(x8), "r"(child_fn), "r"(child_arg), [exit_nr] "i"(SYS_exit)
        : "memory");
    return x0;
#else
#error "jw_clone3 is implemented for x86_64 and aarch64 only"
#endif
}

/// The legacy clone system call, for a process whose system-call filter refuses clone3 (an init
/// runs under its job's filter, which answers clone3 with ENOSYS): same child entry as above,
/// with the pidfd written to `pidfd` (CLONE_PIDFD) and the child starting on `stack_top`.
static long jw_clone_legacy(unsigned long flags, void *stack_top, int *pidfd, jw_child_fn fn, void *arg) {
#if defined(__x86_64__)
    long ret;
    register jw_child_fn child_fn __asm__("r12") = fn;
    register void *child_arg __asm__("r13") = arg;
    register long child_tid __asm__("r10") = 0;
    register long tls __asm__("r8") = 0;
    __asm__ volatile(
        "syscall\n\t"
        "testq %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "xorl %%ebp, %%ebp\n\t"
        "movq %%r13, %%rdi\n\t"
        "callq *%%r12\n\t"
        "movl %%eax, %%edi\n\t"
        "movl %[exit_nr], %%eax\n\t"
        "syscall\n\t"
        "ud2\n\t"
        "1:\n\t"
        : "=a"(ret)
        : "a"((long)SYS_clone), "D"(flags), "S"(stack_top), "d"(pidfd), "r"(child_tid), "r"(tls), "r"(child_fn),
          "r"(child_arg), [exit_nr] "i"(SYS_exit)
        : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x0 __asm__("x0") = (long)flags;
    register long x1 __asm__("x1") = (long)stack_top;
    register long x2 __asm__("x2") = (long)pidfd;
    register long x3 __asm__("x3") = 0;
    register long x4 __asm__("x4") = 0;
    register long x8 __asm__("x8") = SYS_clone;
    register jw_child_fn child_fn __asm__("x19") = fn;
    register void *child_arg __asm__("x20") = arg;
    __asm__ volatile(
        "svc #0\n\t"
        "cbnz x0, 1f\n\t"
        "mov x29, xzr\n\t"
        "mov x30, xzr\n\t"
        "mov x0, x20\n\t"
        "blr x19\n\t"
        "mov x8, %[exit_nr]\n\t"
        "svc #0\n\t"
        "brk #0\n\t"
        "1:\n\t"
        : "+r"(x0)
        : "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x8), "r"(child_fn), "r"(child_arg), [exit_nr] "i"(SYS_exit)
        : "memory");
    return x0;
#endif
}

static void jw_close_quietly(int fd);

// MARK: - Child side: async-signal-safe system calls only

static void jw_child_fail(int error_pipe, jw_step step, int error) {
    int32_t message[2] = {(int32_t)step, (int32_t)error};
    ssize_t ignored = write(error_pipe, message, sizeof(message));
    (void)ignored;
    _exit(127);
}

/// Makes `target` refer to the open file of `source`, clearing close-on-exec in both cases.
static int jw_install_fd(int source, int target) {
    if (source == target) {
        return fcntl(target, F_SETFD, 0);
    }
    return dup2(source, target) < 0 ? -1 : 0;
}

/// Brings up the loopback interface of a new network namespace: SIOCSIFFLAGS on "lo".
static int jw_loopback_up(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) {
        return -1;
    }
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    memcpy(request.ifr_name, "lo", 3);
    int result = ioctl(sock, SIOCGIFFLAGS, &request);
    if (result == 0) {
        request.ifr_flags |= IFF_UP | IFF_RUNNING;
        result = ioctl(sock, SIOCSIFFLAGS, &request);
    }
    int saved = errno;
    close(sock);
    errno = saved;
    return result;
}

/// /proc entries a job must not read: they show the host's memory, keys and timers (runc's
/// default masked paths). Files are covered with /dev/null, directories with an empty tmpfs.
static const char *const jw_masked_proc_files[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
                                                   "/proc/sched_debug", NULL};
static const char *const jw_masked_proc_directories[] = {"/proc/acpi", "/proc/scsi", NULL};
/// /proc entries a job may read but never write: kernel settings, the SysRq trigger, interrupt
/// and bus settings (runc's default read-only paths).
static const char *const jw_read_only_proc_paths[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus",
                                                      NULL};

/// Masks and write-protects the paths above in a fresh /proc; a path this kernel lacks is skipped.
static int jw_protect_proc(void) {
    const unsigned long hardened = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    for (int index = 0; jw_masked_proc_files[index] != NULL; index++) {
        if (mount("/dev/null", jw_masked_proc_files[index], NULL, MS_BIND, NULL) < 0 && errno != ENOENT) {
            return -1;
        }
    }
    for (int index = 0; jw_masked_proc_directories[index] != NULL; index++) {
        if (mount("tmpfs", jw_masked_proc_directories[index], "tmpfs", MS_RDONLY | hardened, "size=0") < 0 &&
            errno != ENOENT) {
            return -1;
        }
    }
    for (int index = 0; jw_read_only_proc_paths[index] != NULL; index++) {
        const char *path = jw_read_only_proc_paths[index];
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT) {
                continue;
            }
            return -1;
        }
        if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | hardened, NULL) < 0) {
            return -1;
        }
    }
    return 0;
}

/// The namespace checklist, in order: private mounts before anything is mounted, the read-only
/// host, /proc, the job's private paths, the /proc masks, the hidden paths, then host name and
/// loopback. Reports the failed step and returns -1 (after which the child exits).
static int jw_setup_namespaces(const jw_spawn_attributes *attributes, int error_pipe) {
    uint64_t flags = attributes->namespace_flags;
    if (flags & CLONE_NEWNS) {
        // Nothing mounted here may propagate back to the host, or to other jobs.
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
            jw_child_fail(error_pipe, JW_STEP_MOUNT_PRIVATE, errno);
        }
        const jw_job_filesystem *filesystem = attributes->filesystem;
        jw_step failed = filesystem != NULL ? jw_protect_host(filesystem) : JW_STEP_NONE;
        if (failed != JW_STEP_NONE) {
            jw_child_fail(error_pipe, failed, errno);
        }
        // A /proc that shows the new PID namespace, not the host's.
        if ((flags & CLONE_NEWPID) &&
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
            jw_child_fail(error_pipe, JW_STEP_MOUNT_PROC, errno);
        }
        failed = filesystem != NULL ? jw_mount_private_paths(filesystem) : JW_STEP_NONE;
        if (failed != JW_STEP_NONE) {
            jw_child_fail(error_pipe, failed, errno);
        }
        if ((flags & CLONE_NEWPID) && jw_protect_proc() < 0) {
            jw_child_fail(error_pipe, JW_STEP_PROTECT_PROC, errno);
        }
        failed = filesystem != NULL ? jw_hide_paths(filesystem) : JW_STEP_NONE;
        if (failed != JW_STEP_NONE) {
            jw_child_fail(error_pipe, failed, errno);
        }
    }
    if ((flags & CLONE_NEWUTS) && attributes->hostname != NULL &&
        sethostname(attributes->hostname, strlen(attributes->hostname)) < 0) {
        jw_child_fail(error_pipe, JW_STEP_HOSTNAME, errno);
    }
    if ((flags & CLONE_NEWNET) && jw_loopback_up() < 0) {
        jw_child_fail(error_pipe, JW_STEP_LOOPBACK, errno);
    }
    return 0;
}


static int jw_child_main(void *raw_context) {
    const struct jw_child_context *context = raw_context;
    const jw_spawn_attributes *attributes = context->attributes;
    int error_pipe = context->error_pipe;

    // 1. Default dispositions for every signal. The worker ignores SIGPIPE and may have handlers;
    //    a handler must never run on this stack, and jobs must not inherit SIG_IGN. The raw
    //    system call also resets the real-time signals that glibc's sigaction() refuses to touch.
    struct jw_kernel_sigaction default_action;
    memset(&default_action, 0, sizeof(default_action));
    for (int signal_number = 1; signal_number < JW_KERNEL_NSIG; signal_number++) {
        if (signal_number == SIGKILL || signal_number == SIGSTOP) {
            continue;
        }
        if (syscall(SYS_rt_sigaction, signal_number, &default_action, NULL, sizeof(uint64_t)) < 0) {
            jw_child_fail(error_pipe, JW_STEP_SIGNALS, errno);
        }
    }

    // 2. Own session and process group, so stop can signal the whole job.
    if (setsid() < 0) {
        jw_child_fail(error_pipe, JW_STEP_SETSID, errno);
    }

    // 3. Join the job's cgroups before the first instruction of the target program.
    for (int index = 0; index < attributes->cgroup_procs_count; index++) {
        if (write(attributes->cgroup_procs_fds[index], "0", 1) != 1) {
            jw_child_fail(error_pipe, JW_STEP_CGROUP, errno);
        }
    }

    // 4. stdio. The caller guarantees both sources are above 2, so no dup2 clobbers another.
    if (jw_install_fd(attributes->stdin_fd, STDIN_FILENO) < 0 ||
        jw_install_fd(attributes->output_fd, STDOUT_FILENO) < 0 ||
        jw_install_fd(attributes->output_fd, STDERR_FILENO) < 0) {
        jw_child_fail(error_pipe, JW_STEP_STDIO, errno);
    }

    // 5. Namespaces: the child is already in them (clone flags); make them usable.
    if (jw_setup_namespaces(attributes, error_pipe) < 0) {
        return 127;
    }

    // 6. The job's resource limits, while the caller's privileges still allow setting a hard
    //    limit above the worker's own. An init keeps the worker's: it applies them to its job.
    int has_init = (attributes->namespace_flags & CLONE_NEWPID) != 0;
    if (!has_init) {
        struct rlimit core = {.rlim_cur = JW_JOB_CORE_LIMIT, .rlim_max = JW_JOB_CORE_LIMIT};
        struct rlimit files;
        // Never above the worker's own hard limit: raising it takes CAP_SYS_RESOURCE, which a
        // worker may lack even as root (a container's bounding set).
        if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &files) < 0) {
            jw_child_fail(error_pipe, JW_STEP_RLIMITS, errno);
        }
        if (files.rlim_max > JW_JOB_OPEN_FILES_HARD) {
            files.rlim_max = JW_JOB_OPEN_FILES_HARD;
        }
        files.rlim_cur = files.rlim_max < JW_JOB_OPEN_FILES_SOFT ? files.rlim_max : JW_JOB_OPEN_FILES_SOFT;
        if (syscall(SYS_prlimit64, 0, RLIMIT_CORE, &core, NULL) < 0 ||
            syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &files, NULL) < 0) {
            jw_child_fail(error_pipe, JW_STEP_RLIMITS, errno);
        }
        // An empty capability bounding set: no program the job runs (setuid or with file
        // capabilities) can gain a capability. Needs CAP_SETPCAP, so before the user changes;
        // a worker without it (not root) has nothing to give away.
        if (attributes->change_credentials) {
            // Capabilities are numbered without gaps: the first one the kernel refuses (EINVAL)
            // is past its last (40 here), so the loop ends there rather than at 63.
            for (int capability = 0; capability <= JW_LAST_CAPABILITY; capability++) {
                if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) < 0) {
                    if (errno == EINVAL) {
                        break;
                    }
                    jw_child_fail(error_pipe, JW_STEP_CAPABILITIES, errno);
                }
            }
        }
    }

    // 7. The job's user, once everything that needs the caller's privileges is done. Raw system
    //    calls: glibc's wrappers would signal every thread of the worker (whose memory this
    //    child shares) to change their credentials too.
    if (!has_init && attributes->change_credentials &&
        (syscall(SYS_setgroups, 0, NULL) < 0 ||
         syscall(SYS_setresgid, attributes->gid, attributes->gid, attributes->gid) < 0 ||
         syscall(SYS_setresuid, attributes->uid, attributes->uid, attributes->uid) < 0 ||
         prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)) {
        jw_child_fail(error_pipe, JW_STEP_CREDENTIALS, errno);
    }

    // 8. Working directory, as the job's user.
    if (attributes->working_directory != NULL && chdir(attributes->working_directory) < 0) {
        jw_child_fail(error_pipe, JW_STEP_CHDIR, errno);
    }
    if (has_init && (jw_install_fd(attributes->control_fd, JW_INIT_CONTROL_FD) < 0 ||
                     (attributes->seccomp_filter_fd >= 0 &&
                      jw_install_fd(attributes->seccomp_filter_fd, JW_INIT_FILTER_FD) < 0))) {
        jw_child_fail(error_pipe, JW_STEP_STDIO, errno);
    }

    // 9. No descriptor of the worker reaches the job. The error pipe is already close-on-exec;
    //    an init keeps its control socket and its job's filter (and its executable's, closed
    //    on exec).
    unsigned int first_closed = !has_init                          ? STDERR_FILENO + 1
                                : attributes->seccomp_filter_fd >= 0 ? JW_INIT_FILTER_FD + 1
                                                                     : JW_INIT_CONTROL_FD + 1;
    if (syscall(SYS_close_range, first_closed, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        jw_child_fail(error_pipe, JW_STEP_CLOSE_FDS, errno);
    }

    // 10. The system-call filter, last: from here on only execve is needed. It requires
    //    no_new_privs (set with the job's user; set here too for a job that keeps the worker's).
    if (!has_init && attributes->seccomp_filter != NULL) {
        struct sock_fprog program = {.len = attributes->seccomp_filter_length,
                                     .filter = (struct sock_filter *)attributes->seccomp_filter};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) < 0) {
            jw_child_fail(error_pipe, JW_STEP_SECCOMP, errno);
        }
    }

    // 11. Exec. The signal mask survives execve: a job starts with none blocked, while an init
    //    starts with every signal blocked, so none sent before it waits for them is lost.
    if (has_init) {
        if (attributes->exec_fd >= 0) {
            syscall(SYS_execveat, attributes->exec_fd, "", attributes->argv, attributes->envp, AT_EMPTY_PATH);
        } else {
            execve(attributes->path, attributes->argv, attributes->envp);
        }
        jw_child_fail(error_pipe, JW_STEP_EXEC_INIT, errno);
    } else {
        sigset_t empty;
        sigemptyset(&empty);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        execve(attributes->path, attributes->argv, attributes->envp);
    }
    jw_child_fail(error_pipe, JW_STEP_EXEC, errno);
    return 127;
}

// MARK: - Parent side

static void jw_close_quietly(int fd) {
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
}

/// Returns a descriptor at or above JW_LOWEST_SOURCE_FD for `fd`: `fd` itself, or a close-on-exec
/// duplicate in `*owned`, so that installing 0-4 in the child never overwrites a source.
static int jw_above_targets(int fd, int *owned) {
    *owned = -1;
    if (fd < 0 || fd >= JW_LOWEST_SOURCE_FD) {
        return fd;
    }
    *owned = fcntl(fd, F_DUPFD_CLOEXEC, JW_LOWEST_SOURCE_FD);
    return *owned;
}

static int jw_fail(jw_spawn_result *result, jw_step step, int error) {
    result->failed_step = step;
    result->error = error;
    return -1;
}

int jw_spawn(const jw_spawn_attributes *attributes, jw_spawn_result *result) {
    result->pid = -1;
    result->pidfd = -1;
    result->failed_step = JW_STEP_NONE;
    result->error = 0;

    int has_init = (attributes->namespace_flags & CLONE_NEWPID) != 0;
    if (has_init && attributes->control_fd < 0) {
        return jw_fail(result, JW_STEP_PREPARE, EINVAL);
    }
    jw_spawn_attributes child_attributes = *attributes;
    int owned[JW_OWNED_COUNT] = {-1, -1, -1, -1, -1};
    child_attributes.stdin_fd = jw_above_targets(attributes->stdin_fd, &owned[0]);
    child_attributes.output_fd = jw_above_targets(attributes->output_fd, &owned[1]);
    child_attributes.control_fd = jw_above_targets(attributes->control_fd, &owned[2]);
    child_attributes.seccomp_filter_fd = has_init ? jw_above_targets(attributes->seccomp_filter_fd, &owned[3]) : -1;
    child_attributes.exec_fd = has_init ? jw_above_targets(attributes->exec_fd, &owned[4]) : -1;
    int error_pipe[2] = {-1, -1};
    if (child_attributes.stdin_fd < 0 || child_attributes.output_fd < 0 ||
        (has_init && (child_attributes.control_fd < 0 ||
                      (attributes->seccomp_filter_fd >= 0 && child_attributes.seccomp_filter_fd < 0) ||
                      (attributes->exec_fd >= 0 && child_attributes.exec_fd < 0))) ||
        pipe2(error_pipe, O_CLOEXEC) < 0) {
        int error = errno;
        for (int i = 0; i < JW_OWNED_COUNT; i++) {
            jw_close_quietly(owned[i]);
        }
        return jw_fail(result, JW_STEP_PREPARE, error);
    }
    // The write end, too, must not sit where the child installs the init's control socket.
    if (error_pipe[1] < JW_LOWEST_SOURCE_FD) {
        int moved = fcntl(error_pipe[1], F_DUPFD_CLOEXEC, JW_LOWEST_SOURCE_FD);
        jw_close_quietly(error_pipe[1]);
        error_pipe[1] = moved;
        if (moved < 0) {
            int error = errno;
            jw_close_quietly(error_pipe[0]);
            for (int i = 0; i < JW_OWNED_COUNT; i++) {
                jw_close_quietly(owned[i]);
            }
            return jw_fail(result, JW_STEP_PREPARE, error);
        }
    }

    void *stack = mmap(NULL, JW_CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        int error = errno;
        jw_close_quietly(error_pipe[0]);
        jw_close_quietly(error_pipe[1]);
        for (int i = 0; i < JW_OWNED_COUNT; i++) {
            jw_close_quietly(owned[i]);
        }
        return jw_fail(result, JW_STEP_PREPARE, error);
    }

    struct jw_child_context context = {.attributes = &child_attributes, .error_pipe = error_pipe[1]};
    int pidfd = -1;
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    // CLONE_VM | CLONE_VFORK: no copy of the worker's page tables (cost independent of its
    // memory), and this thread sleeps until the child has exec'd or exited.
    args.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | attributes->namespace_flags;
    args.pidfd = (uint64_t)(uintptr_t)&pidfd;
    args.exit_signal = SIGCHLD;
    args.stack = (uint64_t)(uintptr_t)stack;
    args.stack_size = JW_CHILD_STACK_SIZE;
    if (attributes->cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)attributes->cgroup_fd;
    }

    // Block every signal so no handler of the worker runs in the child on the shared memory.
    sigset_t all_signals;
    sigset_t previous_mask;
    sigfillset(&all_signals);
    pthread_sigmask(SIG_SETMASK, &all_signals, &previous_mask);
    long pid = jw_clone3(&args, jw_child_main, &context);
    if (pid == -ENOSYS && attributes->cgroup_fd < 0) {
        pid = jw_clone_legacy((unsigned long)(args.flags | SIGCHLD), (char *)stack + JW_CHILD_STACK_SIZE, &pidfd,
                              jw_child_main, &context);
    }
    pthread_sigmask(SIG_SETMASK, &previous_mask, NULL);

    munmap(stack, JW_CHILD_STACK_SIZE);
    jw_close_quietly(error_pipe[1]);
    for (int i = 0; i < JW_OWNED_COUNT; i++) {
        jw_close_quietly(owned[i]);
    }

    if (pid < 0) {
        jw_close_quietly(error_pipe[0]);
        return jw_fail(result, JW_STEP_CLONE, (int)-pid);
    }

    // The child has exec'd (the pipe closed on exec: EOF) or reported a failed step.
    int32_t message[2];
    ssize_t received;
    do {
        received = read(error_pipe[0], message, sizeof(message));
    } while (received < 0 && errno == EINTR);
    jw_close_quietly(error_pipe[0]);

    if (received == (ssize_t)sizeof(message)) {
        siginfo_t info;
        while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR) {
        }
        jw_close_quietly(pidfd);
        return jw_fail(result, (jw_step)message[0], message[1]);
    }

    result->pid = (pid_t)pid;
    result->pidfd = pidfd;
    return 0;
}

// MARK: - Step names

const char *jw_step_name(jw_step step) {
    switch (step) {
#define JW_STEP_NAME(name, value, text) \
    case JW_STEP_##name:                \
        return text;
        JW_STEPS(JW_STEP_NAME)
#undef JW_STEP_NAME
    default:
        return NULL;
    }
}
