#define _GNU_SOURCE
#include "init_protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "job_launcher.h"

// MARK: - Pure encoding and decoding

static int jw_count_strings(char *const *strings, uint32_t *count, size_t *size) {
    *count = 0;
    for (; strings[*count] != NULL; (*count)++) {
        *size += strlen(strings[*count]) + 1;
    }
    return 0;
}

static char *jw_append(char *cursor, const char *string) {
    size_t length = strlen(string) + 1;
    memcpy(cursor, string, length);
    return cursor + length;
}

int jw_encode_job(const char *path, char *const *argv, char *const *envp, const char *working_directory,
                  int change_credentials, uint32_t uid, uint32_t gid, jw_job_header *header, char **strings) {
    const char *directory = working_directory != NULL ? working_directory : "";
    memset(header, 0, sizeof(*header));
    size_t size = strlen(path) + 1 + strlen(directory) + 1;
    jw_count_strings(argv, &header->argc, &size);
    jw_count_strings(envp, &header->envc, &size);
    if (size > JW_MAX_JOB_STRINGS_SIZE || (size_t)header->argc + header->envc + 2 > JW_MAX_JOB_STRINGS) {
        errno = E2BIG;
        return -1;
    }
    header->strings_size = (uint32_t)size;
    header->change_credentials = change_credentials ? 1 : 0;
    header->uid = uid;
    header->gid = gid;
    char *buffer = malloc(size);
    if (buffer == NULL) {
        return -1;
    }
    char *cursor = jw_append(buffer, path);
    for (uint32_t i = 0; i < header->argc; i++) {
        cursor = jw_append(cursor, argv[i]);
    }
    for (uint32_t i = 0; i < header->envc; i++) {
        cursor = jw_append(cursor, envp[i]);
    }
    jw_append(cursor, directory);
    *strings = buffer;
    return 0;
}

int jw_decode_job(const jw_job_header *header, const char *strings, size_t length, jw_job *job) {
    memset(job, 0, sizeof(*job));
    // Every count is checked in 64 bits before anything is allocated or read.
    uint64_t total = 2 + (uint64_t)header->argc + (uint64_t)header->envc;
    if (header->strings_size != length || length == 0 || length > JW_MAX_JOB_STRINGS_SIZE || header->argc == 0 ||
        total > JW_MAX_JOB_STRINGS || total > length || header->change_credentials > 1 || header->reserved != 0 ||
        strings[length - 1] != 0) {
        errno = EINVAL;
        return -1;
    }
    char **argv = calloc((size_t)header->argc + 1, sizeof(char *));
    char **envp = calloc((size_t)header->envc + 1, sizeof(char *));
    if (argv == NULL || envp == NULL) {
        free(argv);
        free(envp);
        errno = ENOMEM;
        return -1;
    }
    // Walk the strings: each ends at a NUL inside the buffer (the last byte is one).
    const char *cursor = strings;
    const char *end = strings + length;
    const char *path = NULL;
    const char *directory = NULL;
    for (uint64_t index = 0; index < total; index++) {
        if (cursor >= end) {
            free(argv);
            free(envp);
            errno = EINVAL;
            return -1;
        }
        if (index == 0) {
            path = cursor;
        } else if (index <= header->argc) {
            argv[index - 1] = (char *)cursor;
        } else if (index <= (uint64_t)header->argc + header->envc) {
            envp[index - 1 - header->argc] = (char *)cursor;
        } else {
            directory = cursor;
        }
        cursor += strnlen(cursor, (size_t)(end - cursor)) + 1;
    }
    // Exactly the strings announced, and a path to run.
    if (cursor != end || path[0] == 0) {
        free(argv);
        free(envp);
        errno = EINVAL;
        return -1;
    }
    job->path = path;
    job->argv = argv;
    job->envp = envp;
    job->working_directory = directory;
    job->change_credentials = (int)header->change_credentials;
    job->uid = header->uid;
    job->gid = header->gid;
    job->output_limit = header->output_limit;
    return 0;
}

void jw_job_free(jw_job *job) {
    free(job->argv);
    free(job->envp);
    job->argv = NULL;
    job->envp = NULL;
}

int jw_decode_reply(const void *bytes, size_t length, jw_init_reply *reply) {
    jw_init_reply decoded;
    if (length != sizeof(decoded)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(&decoded, bytes, sizeof(decoded));
    int valid;
    switch (decoded.kind) {
    case JW_REPLY_STARTED:
        valid = decoded.step == 0 && decoded.error == 0 && decoded.status == 0;
        break;
    case JW_REPLY_FAILED:
        valid = jw_step_name((jw_step)decoded.step) != NULL && decoded.step != JW_STEP_NONE && decoded.error > 0;
        break;
    case JW_REPLY_ENDED:
        valid = decoded.step == 0 && decoded.error == 0 && decoded.status >= 0 && decoded.status <= 0xffff;
        break;
    default:
        valid = 0;
    }
    if (!valid) {
        errno = EINVAL;
        return -1;
    }
    *reply = decoded;
    return 0;
}

size_t jw_format_exit_record(int32_t wait_status, char buffer[JW_EXIT_RECORD_MAX]) {
    char digits[10];
    size_t count = 0;
    uint32_t value = (uint32_t)wait_status;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    size_t length = 0;
    while (count > 0) {
        buffer[length++] = digits[--count];
    }
    buffer[length++] = '\n';
    return length;
}

int jw_parse_exit_record(const char *text, size_t length, int32_t *wait_status) {
    if (length > 0 && text[length - 1] == '\n') {
        length--;
    }
    if (length == 0 || length > 5) {
        errno = EINVAL;
        return -1;
    }
    uint32_t value = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] < '0' || text[i] > '9') {
            errno = EINVAL;
            return -1;
        }
        value = value * 10 + (uint32_t)(text[i] - '0');
    }
    if (value > 0xffff) {
        errno = EINVAL;
        return -1;
    }
    *wait_status = (int32_t)value;
    return 0;
}

// MARK: - The socket

static int jw_send_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t written = send(fd, data, length, MSG_NOSIGNAL);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            return -1;
        }
        data += written;
        length -= (size_t)written;
    }
    return 0;
}

static int jw_read_all(int fd, char *data, size_t length) {
    while (length > 0) {
        ssize_t count = read(fd, data, length);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count <= 0) {
            if (count == 0) {
                errno = ECONNRESET;
            }
            return -1;
        }
        data += count;
        length -= (size_t)count;
    }
    return 0;
}

int jw_send_job(int control_socket, const jw_job_header *header, const char *strings, int stdin_fd, int output_fd,
                int exit_record_fd, int drop_record_fd) {
    int descriptors[4] = {stdin_fd, output_fd, exit_record_fd, drop_record_fd};
    size_t count = exit_record_fd < 0 ? 2 : drop_record_fd < 0 ? 3 : 4;
    union {
        char buffer[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    // Header and strings in one message where the socket buffer allows: one wake-up of the init.
    struct iovec parts[2] = {{.iov_base = (void *)header, .iov_len = sizeof(*header)},
                             {.iov_base = (void *)strings, .iov_len = header->strings_size}};
    struct msghdr message = {
        .msg_iov = parts, .msg_iovlen = 2, .msg_control = control.buffer, .msg_controllen = CMSG_SPACE(sizeof(int) * count)};
    struct cmsghdr *rights = CMSG_FIRSTHDR(&message);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(rights), descriptors, sizeof(int) * count);

    ssize_t sent;
    do {
        sent = sendmsg(control_socket, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        return -1;
    }
    if (sent < (ssize_t)sizeof(*header)) {
        errno = EIO;
        return -1;
    }
    // A large command line may not fit at once: the rest follows as plain bytes.
    size_t done = (size_t)sent - sizeof(*header);
    return jw_send_all(control_socket, strings + done, header->strings_size - done);
}

int jw_receive_reply(int control_socket, int flags, jw_init_reply *reply) {
    jw_init_reply received_reply;
    ssize_t received;
    do {
        received = recv(control_socket, &received_reply, sizeof(received_reply), flags | MSG_WAITALL);
    } while (received < 0 && errno == EINTR);
    if (received < 0) {
        return -1;
    }
    if (received != (ssize_t)sizeof(received_reply)) {
        errno = ECONNRESET;
        return -1;
    }
    return jw_decode_reply(&received_reply, sizeof(received_reply), reply);
}

static int jw_move_up(int fd, int lowest_fd) {
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, lowest_fd);
    close(fd);
    return moved;
}

int jw_receive_job(int control_socket, int lowest_fd, jw_job *job, char **strings, int descriptors[4]) {
    jw_job_header header;
    union {
        char buffer[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct iovec part = {.iov_base = &header, .iov_len = sizeof(header)};
    struct msghdr message = {
        .msg_iov = &part, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof(control)};
    ssize_t received;
    do {
        received = recvmsg(control_socket, &message, MSG_WAITALL | MSG_CMSG_CLOEXEC);
    } while (received < 0 && errno == EINTR);
    descriptors[0] = descriptors[1] = descriptors[2] = descriptors[3] = -1;
    struct cmsghdr *rights = received > 0 ? CMSG_FIRSTHDR(&message) : NULL;
    int count = 0;
    if (rights != NULL && rights->cmsg_level == SOL_SOCKET && rights->cmsg_type == SCM_RIGHTS &&
        rights->cmsg_len >= CMSG_LEN(0) && rights->cmsg_len <= CMSG_LEN(sizeof(int) * 4)) {
        count = (int)((rights->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        memcpy(descriptors, CMSG_DATA(rights), sizeof(int) * (size_t)count);
    }
    for (int i = 0; i < count; i++) {
        descriptors[i] = jw_move_up(descriptors[i], lowest_fd);
    }
    *strings = NULL;
    char *buffer = NULL;
    int valid = received == (ssize_t)sizeof(header) && (message.msg_flags & MSG_CTRUNC) == 0 && count >= 2 &&
                descriptors[0] >= 0 && descriptors[1] >= 0 && (count < 3 || descriptors[2] >= 0) &&
                (count < 4 || descriptors[3] >= 0) &&
                header.strings_size > 0 && header.strings_size <= JW_MAX_JOB_STRINGS_SIZE;
    if (valid) {
        buffer = malloc(header.strings_size);
        valid = buffer != NULL && jw_read_all(control_socket, buffer, header.strings_size) == 0 &&
                jw_decode_job(&header, buffer, header.strings_size, job) == 0;
    }
    if (!valid) {
        free(buffer);
        for (int i = 0; i < 4; i++) {
            if (descriptors[i] >= 0) {
                close(descriptors[i]);
                descriptors[i] = -1;
            }
        }
        return -1;
    }
    *strings = buffer;
    return 0;
}

void jw_send_reply(int control_socket, int32_t kind, int32_t step, int32_t error, int32_t wait_status) {
    jw_init_reply message = {.kind = kind, .step = step, .error = error, .status = wait_status};
    ssize_t ignored = send(control_socket, &message, sizeof(message), MSG_NOSIGNAL);
    (void)ignored;
}
