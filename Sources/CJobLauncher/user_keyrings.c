// jw_clear_user_keyrings (job_launcher.h): raw system calls only in the child.
#define _GNU_SOURCE
#include "job_launcher.h"

#include <errno.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { JW_KEYRING_CHILD_STACK_SIZE = 16 * 1024 };

struct jw_keyring_owner {
    uint32_t uid;
    uint32_t gid;
};

static int jw_clear_as_owner(void *raw_owner) {
    const struct jw_keyring_owner *owner = raw_owner;
    if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, owner->gid, owner->gid, owner->gid) < 0 ||
        syscall(SYS_setresuid, owner->uid, owner->uid, owner->uid) < 0) {
        syscall(SYS_exit, 1);
    }
    long user = syscall(SYS_keyctl, KEYCTL_CLEAR, KEY_SPEC_USER_KEYRING);
    long session = syscall(SYS_keyctl, KEYCTL_CLEAR, KEY_SPEC_USER_SESSION_KEYRING);
    syscall(SYS_exit, user == 0 && session == 0 ? 0 : 2);
    return 0;
}

int jw_clear_user_keyrings(uint32_t uid, uint32_t gid) {
    struct jw_keyring_owner owner = {.uid = uid, .gid = gid};
    void *stack = mmap(NULL, JW_KEYRING_CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        return -1;
    }
    // No handler of the worker may run on the child's stack.
    sigset_t all_signals;
    sigset_t previous_mask;
    sigfillset(&all_signals);
    pthread_sigmask(SIG_SETMASK, &all_signals, &previous_mask);
    pid_t pid = clone(jw_clear_as_owner, (char *)stack + JW_KEYRING_CHILD_STACK_SIZE,
                      CLONE_VM | CLONE_VFORK | SIGCHLD, &owner);
    int error = errno;
    pthread_sigmask(SIG_SETMASK, &previous_mask, NULL);
    munmap(stack, JW_KEYRING_CHILD_STACK_SIZE);
    if (pid < 0) {
        errno = error;
        return -1;
    }
    int status = 0;
    while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = EPERM;
        return -1;
    }
    return 0;
}
