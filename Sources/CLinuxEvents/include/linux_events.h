// Linux event APIs that Swift's Glibc module does not export: epoll, eventfd, inotify and
// pidfd_open (glibc's variadic syscall() cannot be called from Swift).
#ifndef LINUX_EVENTS_H
#define LINUX_EVENTS_H

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

#endif
