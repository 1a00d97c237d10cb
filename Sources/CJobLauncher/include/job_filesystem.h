// What a job's filesystem looks like, set up by the child of jw_spawn in the job's new mount
// namespace before the init is exec'd (so, for a parked init, ahead of the job).
//
// The host's tree is the job's root, every mount of it read-only, nosuid and nodev (as systemd's
// ProtectSystem=strict); the job writes only to a fresh /tmp and /dev/shm (tmpfs, counted against
// its memory limit) and to its /var/tmp (a directory of the worker's on disk). /run is a fresh,
// empty, read-only tmpfs, /dev a minimal one, and the server's files and the hidden host paths
// are covered by empty read-only mounts (directories) or an empty file of mode 0000 (files).
#ifndef JOB_LAUNCHER_JOB_FILESYSTEM_H
#define JOB_LAUNCHER_JOB_FILESYSTEM_H

#ifdef __cplusplus
extern "C" {
#endif

/// A host path the operator binds into every job.
typedef struct jw_bind_mount {
    /// The host path (resolved by the worker, which checked that it exists).
    const char *source;
    /// Where the job sees it (an existing path of the same kind on the host's tree).
    const char *target;
    /// 0: read-only (the default); 1: writable.
    int writable;
} jw_bind_mount;

typedef struct jw_job_filesystem {
    /// Options of the /tmp and /dev/shm tmpfs mounts, e.g. "mode=1777,size=268435456".
    const char *tmpfs_options;
    /// The job's /var/tmp on the host: a fresh, empty directory, bound writable. NULL: /var/tmp
    /// stays the host's, read-only.
    const char *scratch_directory;
    const jw_bind_mount *binds;
    int bind_count;
    /// Covered by an empty read-only tmpfs; a path that does not exist is skipped.
    const char *const *hidden_directories;
    int hidden_directory_count;
    /// Covered by an empty file of mode 0000 (no job can open it); a path that does not exist is
    /// skipped.
    const char *const *hidden_files;
    int hidden_file_count;
} jw_job_filesystem;

#ifdef __cplusplus
}
#endif

#endif
