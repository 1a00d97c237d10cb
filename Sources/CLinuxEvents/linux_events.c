#define _GNU_SOURCE
#include "linux_events.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

int linux_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int linux_make_thread_idle(void) {
    struct sched_param parameters = {.sched_priority = 0};
    return sched_setscheduler(0, SCHED_IDLE | SCHED_RESET_ON_FORK, &parameters);
}
