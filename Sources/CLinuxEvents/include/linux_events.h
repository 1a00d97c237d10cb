// Linux APIs that Swift's Glibc module does not export: epoll, eventfd, inotify, pidfd_open
// (glibc's variadic syscall() cannot be called from Swift), pipe2 and sched_setscheduler's
// Linux-only policies (GNU extensions).
#ifndef LINUX_EVENTS_H
#define LINUX_EVENTS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fcntl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/// A close-on-exec pidfd for `pid`, or -1 with errno set.
static inline int linux_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/// pipe2(2): both ends created with `flags` (O_CLOEXEC, O_NONBLOCK) atomically.
static inline int linux_pipe2(int descriptors[2], int flags) {
    return pipe2(descriptors, flags);
}

/// Moves the calling thread to SCHED_IDLE, with SCHED_RESET_ON_FORK so that processes it starts
/// get the normal policy back: background work that only ever uses otherwise idle CPU.
static inline int linux_make_thread_idle(void) {
    struct sched_param parameters = {.sched_priority = 0};
    return sched_setscheduler(0, SCHED_IDLE | SCHED_RESET_ON_FORK, &parameters);
}

#endif
