// Internal to CJobLauncher: the child-side setup of a job's filesystem (job_filesystem.c).
#ifndef JOB_LAUNCHER_JOB_FILESYSTEM_SETUP_H
#define JOB_LAUNCHER_JOB_FILESYSTEM_SETUP_H

#include "job_launcher.h"

// Called in this order by the child, in its new mount namespace: jw_protect_host before /proc is
// mounted (so that the job's /proc stays writable), jw_mount_private_paths after it, then the
// /proc masks (which bind the private /dev/null), then jw_hide_paths. Each returns JW_STEP_NONE,
// or the step that failed with errno set. Async-signal-safe.

/// Makes every host mount read-only, nosuid and nodev, then binds the operator's paths and the
/// job's /var/tmp.
jw_step jw_protect_host(const jw_job_filesystem *filesystem);

/// Mounts a fresh /tmp, /run (read-only, with /run/lock) and /dev (read-only, with its nodes,
/// /dev/pts and /dev/shm).
jw_step jw_mount_private_paths(const jw_job_filesystem *filesystem);

/// Covers the hidden directories with empty read-only tmpfs mounts and hidden files with an
/// empty file of mode 0000.
jw_step jw_hide_paths(const jw_job_filesystem *filesystem);

#endif
