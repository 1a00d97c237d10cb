// The child side of job_filesystem.h: mount system calls only, on the child's own stack, in
// the child's new mount namespace (nothing here reaches the host: mounts were made private).
#define _GNU_SOURCE
#include "job_filesystem_setup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/// mount_setattr(2) on `path` (and, with AT_RECURSIVE, every mount below it).
static int jw_set_mount_attributes(const char *path, unsigned int flags, uint64_t set, uint64_t clear) {
    struct mount_attr attributes = {.attr_set = set, .attr_clr = clear};
    return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, flags, &attributes, sizeof(attributes));
}

/// Flags of a mount that was created writable and is now sealed: read-only, and its own flags kept.
static int jw_seal(const char *path, unsigned long flags) {
    return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL);
}

/// The device nodes every job gets (all world-usable character devices), as runc and systemd's
/// PrivateDevices= provide.
static const struct {
    const char *path;
    unsigned int major;
    unsigned int minor;
} jw_devices[] = {
    {"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
};

static const struct {
    const char *target;
    const char *path;
} jw_device_links[] = {
    {"pts/ptmx", "/dev/ptmx"},          {"/proc/self/fd", "/dev/fd"},
    {"/proc/self/fd/0", "/dev/stdin"},  {"/proc/self/fd/1", "/dev/stdout"},
    {"/proc/self/fd/2", "/dev/stderr"},
};

/// A minimal /dev: the nodes above, a private devpts instance, /dev/shm, and nothing of the
/// host's (no disk, no other device). Sealed read-only once populated.
static int jw_mount_devices(const char *tmpfs_options) {
    if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64") < 0) {
        return -1;
    }
    for (size_t index = 0; index < sizeof(jw_devices) / sizeof(jw_devices[0]); index++) {
        if (mknod(jw_devices[index].path, S_IFCHR | 0666,
                  makedev(jw_devices[index].major, jw_devices[index].minor)) < 0) {
            return -1;
        }
    }
    for (size_t index = 0; index < sizeof(jw_device_links) / sizeof(jw_device_links[0]); index++) {
        if (symlink(jw_device_links[index].target, jw_device_links[index].path) < 0) {
            return -1;
        }
    }
    if (mkdir("/dev/pts", 0755) < 0 || mkdir("/dev/shm", 01777) < 0 ||
        mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_options) < 0) {
        return -1;
    }
    return jw_seal("/dev", MS_NOSUID | MS_NOEXEC);
}

jw_step jw_protect_host(const jw_job_filesystem *filesystem) {
    const uint64_t protected_host = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (jw_set_mount_attributes("/", AT_RECURSIVE, protected_host, 0) < 0) {
        return JW_STEP_READ_ONLY_HOST;
    }
    // Binds inherit the read-only host's flags; writable ones have them cleared on the bind
    // itself only: a host mount below its source stays as read-only as everywhere else.
    for (int index = 0; index < filesystem->bind_count; index++) {
        const jw_bind_mount *bind = &filesystem->binds[index];
        if (mount(bind->source, bind->target, NULL, MS_BIND | MS_REC, NULL) < 0 ||
            (bind->writable &&
             jw_set_mount_attributes(bind->target, 0, 0, MOUNT_ATTR_RDONLY) < 0)) {
            return JW_STEP_BIND_PATHS;
        }
    }
    if (filesystem->scratch_directory != NULL &&
        (mount(filesystem->scratch_directory, "/var/tmp", NULL, MS_BIND, NULL) < 0 ||
         jw_set_mount_attributes("/var/tmp", 0, 0, MOUNT_ATTR_RDONLY) < 0)) {
        return JW_STEP_BIND_PATHS;
    }
    // The host's mounts below the paths the job gets fresh or hidden stay, covered: detaching
    // them (umount2 MNT_DETACH) would make the namespace smaller, but each detach waits for an
    // expedited RCU grace period (an interrupt of every CPU), which measured slower on the
    // start path than the larger namespace's one teardown at the job's end.
    return JW_STEP_NONE;
}

jw_step jw_mount_private_paths(const jw_job_filesystem *filesystem) {
    const char *tmpfs_options = filesystem->tmpfs_options;
    // Modes below are meant as written (the worker's umask is 077).
    mode_t previous_umask = umask(0);
    // /run: empty, so that no host socket under it can be reached (connect() works on a
    // read-only mount), with the /run/lock programs expect.
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_options) < 0 ||
        mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=16k,nr_inodes=16") < 0 ||
        mkdir("/run/lock", 0755) < 0 || jw_seal("/run", MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0 ||
        jw_mount_devices(tmpfs_options) < 0) {
        return JW_STEP_PRIVATE_MOUNTS;
    }
    umask(previous_umask);
    return JW_STEP_NONE;
}

jw_step jw_hide_paths(const jw_job_filesystem *filesystem) {
    const unsigned long hidden = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    // One empty read-only tmpfs, bound over every other hidden directory: one file system to
    // set up and tear down, however many paths are hidden.
    const char *empty = NULL;
    for (int index = 0; index < filesystem->hidden_directory_count; index++) {
        const char *path = filesystem->hidden_directories[index];
        int result = empty == NULL ? mount("tmpfs", path, "tmpfs", hidden, "mode=0555,size=4k")
                                   : mount(empty, path, NULL, MS_BIND, NULL);
        if (result < 0 && errno != ENOENT) {
            return JW_STEP_HIDE_PATHS;
        }
        if (result == 0 && empty == NULL) {
            empty = path;
        }
    }
    if (filesystem->hidden_file_count == 0) {
        return JW_STEP_NONE;
    }
    // Files are covered by an empty file of mode 0000 (as systemd's InaccessiblePaths=): a job,
    // without capabilities, cannot even open one. It is made in the job's /tmp, bound, and
    // unlinked again: the mounts keep it, /tmp is left empty.
    static const char inaccessible[] = "/tmp/.jobworker-inaccessible";
    int fd = open(inaccessible, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) {
        return JW_STEP_HIDE_PATHS;
    }
    close(fd);
    for (int index = 0; index < filesystem->hidden_file_count; index++) {
        if (mount(inaccessible, filesystem->hidden_files[index], NULL, MS_BIND, NULL) < 0 && errno != ENOENT) {
            return JW_STEP_HIDE_PATHS;
        }
        if (mount(NULL, filesystem->hidden_files[index], NULL, MS_REMOUNT | MS_BIND | hidden, NULL) < 0 &&
            errno != ENOENT) {
            return JW_STEP_HIDE_PATHS;
        }
    }
    if (unlink(inaccessible) < 0) {
        return JW_STEP_HIDE_PATHS;
    }
    return JW_STEP_NONE;
}
