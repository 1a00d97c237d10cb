// Linux APIs that Swift's Glibc module does not export: epoll, eventfd, inotify, pidfd_open
// (glibc's variadic syscall() cannot be called from Swift), the SCHED_IDLE policy (a GNU
// extension) and malloc's tuning (malloc.h). These are wrapped in linux_events.c: defining _GNU_SOURCE in this header
// would make glibc's types differ from the Glibc module's.
#ifndef LINUX_EVENTS_H
#define LINUX_EVENTS_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/types.h>

/// A close-on-exec pidfd for `pid`, or -1 with errno set.
int linux_pidfd_open(pid_t pid);

/// Takes a POSIX write lock on the whole file (fcntl F_SETLK), without waiting: 0, or -1 with
/// errno (EAGAIN/EACCES: held by another process). Unlike flock, the lock belongs to the process
/// and is never held by a child, even one that has not exec'd yet.
int linux_lock_file(int fd);

/// Sends `signal` to the process `pidfd` refers to (never to a process that reused its pid).
int linux_pidfd_send_signal(int pidfd, int signal);

/// Moves the calling thread to SCHED_IDLE, with SCHED_RESET_ON_FORK so that processes it starts
/// get the normal policy back: background work that only ever uses otherwise idle CPU.
int linux_make_thread_idle(void);

/// A close-on-exec anonymous memory file holding `length` bytes from `bytes`, its offset back at
/// 0 and sealed against any change, or -1 with errno set: a job's standard input, read to its
/// end like a file.
int linux_memory_file(const char *name, const void *bytes, size_t length);

/// Sets glibc malloc's mmap threshold and trim threshold (mallopt), so that freed blocks up to
/// `trim_threshold` stay in the process. Returns 0 on success.
int linux_set_malloc_thresholds(int mmap_threshold, int trim_threshold);

#endif
