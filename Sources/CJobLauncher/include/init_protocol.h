// The wire format between the worker and jobworker-init, in one place.
//
// The worker and the init talk over a stream socketpair (the init's end is JW_INIT_CONTROL_FD).
// The worker sends one job: a jw_job_header, then `strings_size` bytes of NUL-terminated strings
// (path, argc arguments, envc environment entries, working directory), with SCM_RIGHTS on the
// first byte carrying the job's stdin, its output log and, optionally, its exit record and its
// drop record. The job's stdout and stderr are a pipe that the init copies into the log, up to
// the header's output limit; bytes past it are read and dropped, and their count kept in the drop
// record (8 bytes, native byte order, rewritten as it grows), so the job never blocks. The init
// answers JW_REPLY_STARTED or JW_REPLY_FAILED once the job has exec'd or failed to, and
// JW_REPLY_ENDED with the job's wait status before it exits; it also writes that status to the
// exit record (decimal text), which outlives the worker.
//
// Encoding and decoding are pure functions of bytes, so that the unit tests fuzz them; the init
// trusts nothing it receives before jw_decode_job has accepted it.
#ifndef JOB_LAUNCHER_INIT_PROTOCOL_H
#define JOB_LAUNCHER_INIT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The descriptor on which jobworker-init talks to the worker.
enum { JW_INIT_CONTROL_FD = 3 };

/// The descriptor from which a parked init reads, once, the system-call filter of its job (a
/// sealed memfd holding struct sock_filter instructions), when the worker has one.
enum { JW_INIT_FILTER_FD = 4 };

/// The longest filter the kernel accepts (BPF_MAXINSNS).
enum { JW_MAX_FILTER_INSTRUCTIONS = 4096 };

/// Bounds a decoder enforces, far above what the worker's own validation lets through (see
/// `ArgumentLimits`), so that a corrupt header cannot make the init allocate without bound.
enum {
    JW_MAX_JOB_STRINGS_SIZE = 64 * 1024 * 1024,
    JW_MAX_JOB_STRINGS = 1024 * 1024,
};

/// What an init reports.
typedef enum jw_reply_kind {
    JW_REPLY_STARTED = 1,
    JW_REPLY_FAILED = 2,
    JW_REPLY_ENDED = 3,
} jw_reply_kind;

typedef struct jw_init_reply {
    int32_t kind;
    /// JW_REPLY_FAILED: the step (jw_step) and its errno.
    int32_t step;
    int32_t error;
    /// JW_REPLY_ENDED: the job's wait status.
    int32_t status;
} jw_init_reply;

/// The fixed part of a job, as sent.
typedef struct jw_job_header {
    uint32_t argc;
    uint32_t envc;
    uint32_t strings_size;
    /// The job's user and group, applied when change_credentials is 1.
    uint32_t change_credentials;
    uint32_t uid;
    uint32_t gid;
    uint32_t reserved;
    /// Most bytes of output the log keeps; 0: no limit. Set by the caller after jw_encode_job.
    uint64_t output_limit;
} jw_job_header;

/// A job as decoded: pointers into the strings buffer it was decoded from, and two arrays the
/// decoder allocated (freed by jw_job_free).
typedef struct jw_job {
    const char *path;
    char **argv;
    char **envp;
    /// "" keeps the init's working directory.
    const char *working_directory;
    int change_credentials;
    uint32_t uid;
    uint32_t gid;
    uint64_t output_limit;
} jw_job;

/// Lays out `path`, `argv`, `envp` and `working_directory` (NULL: "") as one strings buffer,
/// malloc'd into `*strings`, and fills `header`. Returns 0, or -1 with errno (ENOMEM, E2BIG).
int jw_encode_job(const char *path, char *const *argv, char *const *envp, const char *working_directory,
                  int change_credentials, uint32_t uid, uint32_t gid, jw_job_header *header, char **strings);

/// Checks a received header and strings buffer of `length` bytes and decodes them into `job`.
/// Accepts only exactly `2 + argc + envc` NUL-terminated strings filling the buffer, argc ≥ 1,
/// a non-empty path, a credentials flag of 0 or 1 and sizes within the bounds above. Returns 0,
/// or -1 with errno EINVAL (malformed) or ENOMEM; `job` then owns nothing.
int jw_decode_job(const jw_job_header *header, const char *strings, size_t length, jw_job *job);

/// Frees the arrays jw_decode_job allocated (not the strings buffer).
void jw_job_free(jw_job *job);

/// Decodes one reply of `length` bytes. Returns 0, or -1 with errno EINVAL if it is not a
/// reply an init sends.
int jw_decode_reply(const void *bytes, size_t length, jw_init_reply *reply);

/// The longest exit record: ten digits and a newline.
enum { JW_EXIT_RECORD_MAX = 11 };

/// Formats a wait status as an exit record into `buffer`; returns its length.
size_t jw_format_exit_record(int32_t wait_status, char buffer[JW_EXIT_RECORD_MAX]);

/// Parses an exit record: decimal digits, optionally followed by one newline, of a wait status
/// (0 to 65535). Returns 0, or -1 with errno EINVAL.
int jw_parse_exit_record(const char *text, size_t length, int32_t *wait_status);

/// Worker side: sends a job to a waiting init, with its descriptors (`exit_record_fd` may be
/// -1, and then `drop_record_fd` must be too). Returns 0, or -1 with errno set.
int jw_send_job(int control_socket, const jw_job_header *header, const char *strings, int stdin_fd, int output_fd,
                int exit_record_fd, int drop_record_fd);

/// Worker side: reads one reply of an init. `flags` are recv(2) flags (MSG_DONTWAIT to not
/// wait). Returns 0, or -1 with errno set (the init closed its end: ECONNRESET; garbage: EINVAL).
int jw_receive_reply(int control_socket, int flags, jw_init_reply *reply);

/// Init side: waits for the worker's job and decodes it. `*strings` receives the malloc'd
/// strings buffer the job points into, and `descriptors` stdin, output, exit record and drop
/// record (-1 if none), moved to `lowest_fd` or above, close-on-exec. Returns 0, or -1 if the
/// worker went away or sent something malformed (nothing is then left open or allocated).
int jw_receive_job(int control_socket, int lowest_fd, jw_job *job, char **strings, int descriptors[4]);

/// Init side: sends a reply; errors are ignored (a worker that went away does not stop the init).
void jw_send_reply(int control_socket, int32_t kind, int32_t step, int32_t error, int32_t wait_status);

#ifdef __cplusplus
}
#endif

#endif
