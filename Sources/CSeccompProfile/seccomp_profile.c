// The profile. Sources: Docker's default seccomp profile (moby/profiles), the calls it denies a
// container without added capabilities; runc and systemd's SystemCallFilter=@system-service
// deny the same families.
#define _GNU_SOURCE
#include "seccomp_profile.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const jw_denied[] = {
    // Kernel keyrings: keys are kept per uid by the kernel and outlive the job.
    "keyctl", "add_key", "request_key",
    // Kernel programs and tracing of the host.
    "bpf", "perf_event_open", "lookup_dcookie",
    // Page-fault handling from user space: a tool of kernel exploits.
    "userfaultfd",
    // Loading kernels and modules.
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "create_module",
    "get_kernel_syms", "query_module",
    // File handles bypass the mount a path goes through.
    "open_by_handle_at", "name_to_handle_at",
    // Mounts and the root directory, old and new mount API.
    "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr",
    // Namespaces of another process.
    "setns",
    // Swap, power, accounting, clocks, the kernel log, quotas.
    "swapon", "swapoff", "reboot", "acct", "settimeofday", "stime", "clock_settime", "clock_adjtime", "adjtimex",
    "syslog", "quotactl", "quotactl_fd",
    // Raw hardware access and the legacy x86 modes.
    "ioperm", "iopl", "vm86", "vm86old",
    // Obsolete or host-wide calls no job needs.
    "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "vhangup",
    NULL,
};

static const char *const jw_io_uring[] = {"io_uring_setup", "io_uring_enter", "io_uring_register", NULL};

const char *const *jw_seccomp_denied_system_calls(void) { return jw_denied; }

const char *const *jw_seccomp_io_uring_system_calls(void) { return jw_io_uring; }

/// Every flag that creates a namespace (CLONE_NEWTIME only means one for unshare).
static const unsigned long jw_namespace_flags[] = {CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                                    CLONE_NEWUSER, CLONE_NEWPID,   CLONE_NEWNET, CLONE_NEWTIME};

int jw_seccomp_system_call_number(const char *name) {
    int number = seccomp_syscall_resolve_name(name);
    return number == __NR_SCMP_ERROR || number < 0 ? -1 : number;
}

static int jw_deny_all(scmp_filter_ctx context, const char *const *names) {
    for (int index = 0; names[index] != NULL; index++) {
        int number = jw_seccomp_system_call_number(names[index]);
        if (number < 0) {
            continue;  // not a system call of this architecture
        }
        int result = seccomp_rule_add(context, SCMP_ACT_ERRNO(EPERM), number, 0);
        if (result < 0) {
            return result;
        }
    }
    return 0;
}

/// The rules libseccomp can express (one comparison per argument and rule).
static int jw_add_rules(scmp_filter_ctx context, int allow_io_uring) {
    int result = jw_deny_all(context, jw_denied);
    if (result == 0 && !allow_io_uring) {
        result = jw_deny_all(context, jw_io_uring);
    }
    // A namespace flag in clone or unshare: one rule per flag (the rules of a call are OR'ed).
    for (size_t index = 0; result == 0 && index < sizeof(jw_namespace_flags) / sizeof(jw_namespace_flags[0]);
         index++) {
        unsigned long flag = jw_namespace_flags[index];
        result = seccomp_rule_add(context, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                                  SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
        if (result == 0 && flag != CLONE_NEWTIME) {
            result = seccomp_rule_add(context, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                      SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
        }
    }
    // clone3 passes its flags in memory, which a filter cannot read: ENOSYS makes the C library
    // fall back to clone, whose flags are checked above (Docker does the same).
    if (result == 0) {
        result = seccomp_rule_add(context, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    }
    return result;
}

#if defined(__x86_64__)
#define JW_NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define JW_NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "the seccomp profile is defined for x86_64 and aarch64 only"
#endif

/// personality(2) with anything but the values Docker allows (0, PER_LINUX32, UNAME26 and
/// their combination, and the 0xffffffff query) needs several comparisons of one argument,
/// which libseccomp cannot express in one rule: this hand-written prefix runs first and jumps to
/// libseccomp's program for every other call (and for every call of a foreign architecture,
/// which that program kills).
enum { JW_PERSONALITY_PREFIX_LENGTH = 12 };

static void jw_personality_prefix(struct sock_filter prefix[JW_PERSONALITY_PREFIX_LENGTH]) {
    const unsigned int arch = offsetof(struct seccomp_data, arch);
    const unsigned int nr = offsetof(struct seccomp_data, nr);
    // The low 32 bits of the first argument (personality takes an unsigned int).
    const unsigned int argument = offsetof(struct seccomp_data, args[0]) + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? 4 : 0);
    struct sock_filter program[JW_PERSONALITY_PREFIX_LENGTH] = {
        /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arch),
        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, JW_NATIVE_AUDIT_ARCH, 0, 10),  // else: to 12
        /* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, nr),
        /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, 8),  // else: to 12
        /* 4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, argument),
        /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0, 5, 0),  // to 11
        /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x8, 4, 0),
        /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20000, 3, 0),
        /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20008, 2, 0),
        /* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffff, 1, 0),
        /* 10 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        /* 11 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    memcpy(prefix, program, sizeof(program));
}

/// libseccomp 2.5 exports only to a descriptor: through a memfd, read back whole.
static int jw_export(scmp_filter_ctx context, struct sock_filter **program, unsigned short *length) {
    int fd = (int)syscall(SYS_memfd_create, "jobworker-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int result = seccomp_export_bpf(context, fd);
    off_t size = result == 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (result < 0 || size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0) {
        close(fd);
        errno = result < 0 ? -result : EINVAL;
        return -1;
    }
    size_t count = (size_t)size / sizeof(struct sock_filter) + JW_PERSONALITY_PREFIX_LENGTH;
    if (count > BPF_MAXINSNS) {
        close(fd);
        errno = E2BIG;
        return -1;
    }
    struct sock_filter *buffer = calloc(count, sizeof(struct sock_filter));
    if (buffer == NULL) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    jw_personality_prefix(buffer);
    if (pread(fd, buffer + JW_PERSONALITY_PREFIX_LENGTH, (size_t)size, 0) != (ssize_t)size) {
        int error = errno != 0 ? errno : EIO;
        free(buffer);
        close(fd);
        errno = error;
        return -1;
    }
    close(fd);
    *program = buffer;
    *length = (unsigned short)count;
    return 0;
}

int jw_build_seccomp_profile(int allow_io_uring, struct sock_filter **program, unsigned short *length) {
    scmp_filter_ctx context = seccomp_init(SCMP_ACT_ALLOW);
    if (context == NULL) {
        errno = ENOMEM;
        return -1;
    }
    // The launcher sets no_new_privs itself; a foreign architecture's call kills the process.
    int result = seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0);
    if (result == 0) {
        result = seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    }
    // A binary search over the call numbers rather than a linear scan: every system call of
    // every job runs the program.
    if (result == 0) {
        result = seccomp_attr_set(context, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    }
    if (result == 0) {
        result = jw_add_rules(context, allow_io_uring);
    }
    if (result < 0) {
        seccomp_release(context);
        errno = -result;
        return -1;
    }
    result = jw_export(context, program, length);
    int error = errno;
    seccomp_release(context);
    errno = error;
    return result;
}

int jw_seal_seccomp_profile(const struct sock_filter *program, unsigned short length) {
    int fd = (int)syscall(SYS_memfd_create, "jobworker-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        return -1;
    }
    size_t size = (size_t)length * sizeof(struct sock_filter);
    if (write(fd, program, size) != (ssize_t)size ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        int error = errno != 0 ? errno : EIO;
        close(fd);
        errno = error;
        return -1;
    }
    return fd;
}
