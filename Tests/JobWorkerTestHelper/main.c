// A job whose behaviour the tests choose: exit codes, signals, output patterns, process trees.
// Written in C so that what it does (fork, signal dispositions, raw writes) is exactly what the
// test asks for, with no runtime in between.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/sched.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static void write_all(int fd, const void *data, size_t length) {
    const char *bytes = data;
    while (length > 0) {
        ssize_t written = write(fd, bytes, length);
        if (written <= 0) {
            _exit(120);
        }
        bytes += written;
        length -= (size_t)written;
    }
}

static void say(const char *text) { write_all(STDOUT_FILENO, text, strlen(text)); }

static void wait_forever(void) {
    for (;;) {
        pause();
    }
}

static void on_term(int signal_number) {
    (void)signal_number;
    say("got SIGTERM\n");
    _exit(0);
}

static void on_term_noted(int signal_number) {
    (void)signal_number;
    say("noted SIGTERM\n");
}

/// Byte i of the pattern the tests verify: i mod 251 (a prime, so it never lines up with chunks).
/// Says which signal arrived ("got signal 2") and exits 0.
static void on_any_signal(int signal_number) {
    char line[32];
    int length = snprintf(line, sizeof(line), "got signal %d\n", signal_number);
    write_all(STDOUT_FILENO, line, (size_t)length);
    _exit(0);
}

static void write_pattern(unsigned long long total) {
    static unsigned char buffer[251 * 256];
    for (size_t i = 0; i < sizeof(buffer); i++) {
        buffer[i] = (unsigned char)(i % 251);
    }
    while (total > 0) {
        size_t length = total < sizeof(buffer) ? (size_t)total : sizeof(buffer);
        write_all(STDOUT_FILENO, buffer, length);
        total -= length;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODE [ARGS...]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];

    if (strcmp(mode, "echo-args") == 0) {
        for (int i = 2; i < argc; i++) {
            say(argv[i]);
            say("\n");
        }
        return 0;
    }
    if (strcmp(mode, "exit") == 0 && argc == 3) {
        return atoi(argv[2]);
    }
    if (strcmp(mode, "signal") == 0 && argc == 3) {
        int signal_number = atoi(argv[2]);
        signal(signal_number, SIG_DFL);
        raise(signal_number);
        return 121;
    }
    if (strcmp(mode, "pattern") == 0 && argc == 3) {
        write_pattern(strtoull(argv[2], NULL, 10));
        return 0;
    }
    if (strcmp(mode, "pattern-fifo-pattern") == 0 && argc == 4) {
        // SIZE pattern bytes, a wait for a line on the FIFO argv[3], SIZE more, exit 5. With SIZE
        // a multiple of 251 the second half goes on with the pattern at its offset.
        unsigned long long size = strtoull(argv[2], NULL, 10);
        write_pattern(size);
        FILE *fifo = fopen(argv[3], "r");
        char line[64];
        while (fifo != NULL && fgets(line, sizeof(line), fifo) == NULL && errno == EINTR) {
        }
        write_pattern(size);
        return 5;
    }
    if (strcmp(mode, "all-bytes") == 0) {
        unsigned char bytes[256];
        for (int i = 0; i < 256; i++) {
            bytes[i] = (unsigned char)i;
        }
        write_all(STDOUT_FILENO, bytes, sizeof(bytes));
        return 0;
    }
    if (strcmp(mode, "interleave") == 0 && argc == 3) {
        int count = atoi(argv[2]);
        char line[64];
        for (int i = 0; i < count; i++) {
            int fd = i % 2 == 0 ? STDOUT_FILENO : STDERR_FILENO;
            int length = snprintf(line, sizeof(line), "%s %d\n", fd == STDOUT_FILENO ? "out" : "err", i);
            write_all(fd, line, (size_t)length);
        }
        return 0;
    }
    if (strcmp(mode, "trap-term") == 0) {
        signal(SIGTERM, on_term);
        say("ready\n");
        wait_forever();
    }
    if (strcmp(mode, "name-signal") == 0) {
        // Says which of the catchable stop signals arrived, and exits 0.
        int catchable[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
        for (size_t index = 0; index < sizeof(catchable) / sizeof(catchable[0]); index++) {
            signal(catchable[index], on_any_signal);
        }
        say("ready\n");
        wait_forever();
    }
    if (strcmp(mode, "note-term") == 0) {
        // Says so on each SIGTERM, and goes on.
        signal(SIGTERM, on_term_noted);
        say("ready\n");
        wait_forever();
    }
    if (strcmp(mode, "note-term-then-fifo") == 0 && argc == 3) {
        // As note-term, and exits 3 once a line can be read from the FIFO argv[2].
        signal(SIGTERM, on_term_noted);
        say("ready\n");
        FILE *fifo = fopen(argv[2], "r");
        char line[64];
        while (fifo != NULL && fgets(line, sizeof(line), fifo) == NULL && errno == EINTR) {
        }
        return 3;
    }
    if (strcmp(mode, "ignore-term") == 0) {
        signal(SIGTERM, SIG_IGN);
        say("ready\n");
        wait_forever();
    }
    if (strcmp(mode, "sleep") == 0) {
        say("ready\n");
        wait_forever();
    }
    if (strcmp(mode, "grandchild-ignores-term") == 0) {
        // job -> child -> grandchild; only the grandchild ignores SIGTERM.
        int ready[2];
        if (pipe(ready) != 0) {
            return 122;
        }
        pid_t child = fork();
        if (child == 0) {
            pid_t grandchild = fork();
            if (grandchild == 0) {
                signal(SIGTERM, SIG_IGN);
                char line[64];
                int length = snprintf(line, sizeof(line), "grandchild %d\n", (int)getpid());
                write_all(STDOUT_FILENO, line, (size_t)length);
                close(ready[0]);
                close(ready[1]);
                wait_forever();
            }
            close(ready[0]);
            close(ready[1]);
            wait_forever();
        }
        close(ready[1]);
        char byte;
        while (read(ready[0], &byte, 1) > 0) {
        }
        say("ready\n");
        wait_forever();
    }
    if (strcmp(mode, "background-child") == 0) {
        // Leaves a child behind and exits: the worker must not let it outlive the job.
        int ready[2];
        if (pipe(ready) != 0) {
            return 122;
        }
        pid_t child = fork();
        if (child == 0) {
            close(ready[0]);
            close(ready[1]);
            wait_forever();
        }
        char line[64];
        int length = snprintf(line, sizeof(line), "child %d\n", (int)child);
        write_all(STDOUT_FILENO, line, (size_t)length);
        return 0;
    }
    if (strcmp(mode, "print-cwd") == 0) {
        char directory[4096];
        if (getcwd(directory, sizeof(directory)) == NULL) {
            return 1;
        }
        say(directory);
        say("\n");
        return 0;
    }
    if (strcmp(mode, "print-environment") == 0) {
        extern char **environ;
        for (char **entry = environ; *entry != NULL; entry++) {
            say(*entry);
            say("\n");
        }
        return 0;
    }
    if (strcmp(mode, "print-descriptors") == 0) {
        DIR *directory = opendir("/proc/self/fd");
        int own = dirfd(directory);
        struct dirent *entry;
        while ((entry = readdir(directory)) != NULL) {
            if (entry->d_name[0] == '.' || atoi(entry->d_name) == own) {
                continue;
            }
            say(entry->d_name);
            say("\n");
        }
        return 0;
    }
    if (strcmp(mode, "print-signal-state") == 0) {
        // The SigBlk and SigIgn lines of /proc/self/status: both must be all zeros.
        FILE *status = fopen("/proc/self/status", "r");
        char line[256];
        while (status != NULL && fgets(line, sizeof(line), status) != NULL) {
            if (strncmp(line, "SigBlk:", 7) == 0 || strncmp(line, "SigIgn:", 7) == 0) {
                say(line);
            }
        }
        return 0;
    }
    if (strcmp(mode, "print-session") == 0) {
        char line[128];
        int length = snprintf(line, sizeof(line), "pid %d pgid %d sid %d\n", (int)getpid(),
                              (int)getpgid(0), (int)getsid(0));
        write_all(STDOUT_FILENO, line, (size_t)length);
        return 0;
    }
    if (strcmp(mode, "print-cgroup") == 0) {
        // First thing the program does: its cgroup must already be the job's.
        int fd = open("/proc/self/cgroup", O_RDONLY);
        char buffer[4096];
        ssize_t length;
        while ((length = read(fd, buffer, sizeof(buffer))) > 0) {
            write_all(STDOUT_FILENO, buffer, (size_t)length);
        }
        return 0;
    }
    if (strcmp(mode, "allocate") == 0 && argc == 3) {
        // Touches BYTES of fresh memory, a mebibyte at a time, then reports success.
        unsigned long long total = strtoull(argv[2], NULL, 10);
        for (unsigned long long done = 0; done < total; done += 1 << 20) {
            char *block = malloc(1 << 20);
            if (block == NULL) {
                return 3;
            }
            memset(block, 1, 1 << 20);
        }
        say("allocated\n");
        return 0;
    }
    if (strcmp(mode, "spin") == 0 && argc == 3) {
        // Busy for SECONDS of wall-clock time.
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        double seconds = atof(argv[2]);
        volatile unsigned long counter = 0;
        do {
            for (int i = 0; i < 100000; i++) {
                counter++;
            }
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
        return 0;
    }
    if (strcmp(mode, "system-calls") == 0) {
        // system-calls NAME:NUMBER...: makes each call with zero arguments; "NAME errno" (0: it
        // returned). The job runs unprivileged: unfiltered, the kernel refuses what is harmful.
        for (int index = 2; index < argc; index++) {
            char *colon = strchr(argv[index], ':');
            if (colon == NULL) {
                return 2;
            }
            *colon = 0;
            long result = syscall(strtol(colon + 1, NULL, 10), 0, 0, 0, 0, 0, 0);
            printf("%s %d\n", argv[index], result < 0 ? errno : 0);
        }
        return 0;
    }
    if (strcmp(mode, "add-user-key") == 0) {
        // Adds a key "jobworker-test" to the uid's user keyring: "added" or why not.
        long key = syscall(SYS_add_key, "user", "jobworker-test", "secret", 6, KEY_SPEC_USER_KEYRING);
        printf("%s\n", key >= 0 ? "added" : strerror(errno));
        return 0;
    }
    if (strcmp(mode, "find-user-key") == 0) {
        // Looks for that key in the uid's user keyring: "found" or why not.
        long key = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", "jobworker-test", 0);
        printf("%s\n", key >= 0 ? "found" : strerror(errno));
        return 0;
    }
    if (strcmp(mode, "namespaces") == 0) {
        // What creating namespaces gives: "unshare-user", "unshare-net", "clone-user", "clone3".
        printf("unshare-user %d\n", unshare(CLONE_NEWUSER) < 0 ? errno : 0);
        printf("unshare-net %d\n", unshare(CLONE_NEWNET) < 0 ? errno : 0);
        long child = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (child == 0) {
            _exit(0);
        }
        printf("clone-user %d\n", child < 0 ? errno : 0);
        if (child > 0) {
            waitpid((pid_t)child, NULL, 0);
        }
        struct clone_args args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
        long child3 = syscall(SYS_clone3, &args, sizeof(args));
        if (child3 == 0) {
            _exit(0);
        }
        printf("clone3 %d\n", child3 < 0 ? errno : 0);
        if (child3 > 0) {
            waitpid((pid_t)child3, NULL, 0);
        }
        // An ordinary fork must still work (glibc falls back from clone3 to clone).
        pid_t forked = fork();
        if (forked == 0) {
            _exit(0);
        }
        printf("fork %d\n", forked < 0 ? errno : 0);
        if (forked > 0) {
            waitpid(forked, NULL, 0);
        }
        return 0;
    }
    if (strcmp(mode, "personality") == 0) {
        // The query and the default persona work; READ_IMPLIES_EXEC does not.
        printf("query %d\n", personality(0xffffffff) < 0 ? errno : 0);
        printf("linux %d\n", personality(PER_LINUX) < 0 ? errno : 0);
        printf("read-implies-exec %d\n", personality(READ_IMPLIES_EXEC) < 0 ? errno : 0);
        return 0;
    }
    if (strcmp(mode, "i386-getpid") == 0) {
#if defined(__x86_64__)
        // getpid (20) through the i386 entry point.
        long result;
        __asm__ volatile("int $0x80" : "=a"(result) : "a"(20L) : "memory");
        printf("i386 getpid returned %ld\n", result);
        return 0;
#else
        return 3;
#endif
    }
    if (strcmp(mode, "try-create") == 0) {
        // try-create PATH...: "PATH ok" (created, then removed) or "PATH <strerror>".
        for (int index = 2; index < argc; index++) {
            int fd = open(argv[index], O_WRONLY | O_CREAT | O_EXCL, 0600);
            printf("%s %s\n", argv[index], fd >= 0 ? "ok" : strerror(errno));
            if (fd >= 0) {
                close(fd);
                unlink(argv[index]);
            }
        }
        return 0;
    }
    if (strcmp(mode, "write-file") == 0 && argc == 4) {
        // write-file PATH BYTES: writes BYTES to PATH, then says "written".
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            printf("open %s\n", strerror(errno));
            return 4;
        }
        static char block[1 << 16];
        memset(block, 1, sizeof(block));
        for (unsigned long long done = 0, total = strtoull(argv[3], NULL, 10); done < total;) {
            size_t length = total - done < sizeof(block) ? (size_t)(total - done) : sizeof(block);
            ssize_t written = write(fd, block, length);
            if (written <= 0) {
                printf("write %s\n", strerror(errno));
                return 6;
            }
            done += (unsigned long long)written;
        }
        close(fd);
        say("written\n");
        return 0;
    }
    if (strcmp(mode, "list") == 0) {
        // list DIR...: "DIR: NAME NAME ..." (entries other than . and ..), or "DIR <strerror>".
        for (int index = 2; index < argc; index++) {
            DIR *directory = opendir(argv[index]);
            if (directory == NULL) {
                printf("%s %s\n", argv[index], strerror(errno));
                continue;
            }
            printf("%s:", argv[index]);
            struct dirent *entry;
            while ((entry = readdir(directory)) != NULL) {
                if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
                    printf(" %s", entry->d_name);
                }
            }
            printf("\n");
            closedir(directory);
        }
        return 0;
    }
    if (strcmp(mode, "unix-connect") == 0) {
        // unix-connect PATH...: "PATH ok" or "PATH <strerror>" for a stream connect to each.
        for (int index = 2; index < argc; index++) {
            int fd = socket(AF_UNIX, SOCK_STREAM, 0);
            struct sockaddr_un address = {.sun_family = AF_UNIX};
            strncpy(address.sun_path, argv[index], sizeof(address.sun_path) - 1);
            int connected = connect(fd, (struct sockaddr *)&address, sizeof(address));
            printf("%s %s\n", argv[index], connected == 0 ? "ok" : strerror(errno));
            close(fd);
        }
        return 0;
    }
    if (strcmp(mode, "ipc-serve") == 0 && argc == 4) {
        // ipc-serve NAME KEY: listens on the abstract socket @NAME, creates SysV shared memory
        // with KEY (mode 0666), writes /tmp/mine and /dev/shm/mine, says "serving", waits.
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un address = {.sun_family = AF_UNIX};
        strncpy(address.sun_path + 1, argv[2], sizeof(address.sun_path) - 2);
        socklen_t length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(argv[2]));
        if (bind(fd, (struct sockaddr *)&address, length) < 0 || listen(fd, 8) < 0) {
            printf("bind %s\n", strerror(errno));
            return 4;
        }
        if (shmget((key_t)strtol(argv[3], NULL, 10), 4096, IPC_CREAT | 0666) < 0) {
            printf("shmget %s\n", strerror(errno));
            return 5;
        }
        int files[2] = {open("/tmp/mine", O_WRONLY | O_CREAT, 0644), open("/dev/shm/mine", O_WRONLY | O_CREAT, 0644)};
        if (files[0] < 0 || files[1] < 0) {
            printf("create %s\n", strerror(errno));
            return 6;
        }
        say("serving\n");
        wait_forever();
    }
    if (strcmp(mode, "ipc-probe") == 0 && argc == 5) {
        // ipc-probe NAME KEY PID: tries the other job's abstract socket, SysV memory, files and
        // process; one "what result" line each.
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un address = {.sun_family = AF_UNIX};
        strncpy(address.sun_path + 1, argv[2], sizeof(address.sun_path) - 2);
        socklen_t length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(argv[2]));
        printf("abstract %s\n", connect(fd, (struct sockaddr *)&address, length) == 0 ? "ok" : strerror(errno));
        printf("shm %s\n", shmget((key_t)strtol(argv[3], NULL, 10), 4096, 0) >= 0 ? "ok" : strerror(errno));
        printf("tmp %s\n", access("/tmp/mine", F_OK) == 0 ? "ok" : strerror(errno));
        printf("dev-shm %s\n", access("/dev/shm/mine", F_OK) == 0 ? "ok" : strerror(errno));
        printf("kill %s\n", kill((pid_t)strtol(argv[4], NULL, 10), 0) == 0 ? "ok" : strerror(errno));
        return 0;
    }
    if (strcmp(mode, "direct-write") == 0 && argc == 4) {
        // Writes BYTES to PATH with O_DIRECT (bypassing the page cache), 1 MiB at a time.
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0600);
        if (fd < 0) {
            perror("open");
            return 4;
        }
        void *block;
        if (posix_memalign(&block, 4096, 1 << 20) != 0) {
            return 5;
        }
        memset(block, 7, 1 << 20);
        for (unsigned long long done = 0, total = strtoull(argv[3], NULL, 10); done < total; done += 1 << 20) {
            if (write(fd, block, 1 << 20) != 1 << 20) {
                perror("write");
                return 6;
            }
        }
        fsync(fd);
        close(fd);
        return 0;
    }
    if (strcmp(mode, "fork-bomb") == 0) {
        // Forks without end; every process keeps trying. Prints "ready" once forks start failing.
        int reported = 0;
        for (;;) {
            pid_t child = fork();
            if (child < 0 && !reported && getpid() > 0) {
                reported = 1;
                say("ready\n");
            }
            if (child < 0) {
                struct timespec pause = {0, 1000000};
                nanosleep(&pause, NULL);
            }
        }
    }
    if (strcmp(mode, "escape") == 0) {
        // A child that leaves the job's session and process group, then lives on.
        int ready[2];
        if (pipe(ready) != 0) {
            return 122;
        }
        pid_t child = fork();
        if (child == 0) {
            setsid();
            close(ready[0]);
            close(ready[1]);
            wait_forever();
        }
        close(ready[1]);
        char byte;
        while (read(ready[0], &byte, 1) > 0) {
        }
        char line[64];
        int length = snprintf(line, sizeof(line), "escaped %d\n", (int)child);
        write_all(STDOUT_FILENO, line, (size_t)length);
        say("ready\n");
        wait_forever();
    }
    if (strcmp(mode, "print-pids") == 0) {
        // Its own PID, then every PID /proc lists.
        printf("self %d\n", (int)getpid());
        DIR *directory = opendir("/proc");
        struct dirent *entry;
        while ((entry = readdir(directory)) != NULL) {
            if (entry->d_name[0] >= '1' && entry->d_name[0] <= '9') {
                printf("pid %s\n", entry->d_name);
            }
        }
        return 0;
    }
    if (strcmp(mode, "network") == 0 && argc >= 3) {
        // Interfaces from /proc/net/dev, whether lo is up, and whether 127.0.0.1:PORT answers.
        FILE *devices = fopen("/proc/net/dev", "r");
        char line[512];
        while (devices != NULL && fgets(line, sizeof(line), devices) != NULL) {
            char *colon = strchr(line, ':');
            if (colon == NULL) {
                continue;
            }
            *colon = 0;
            char *name = line;
            while (*name == ' ') {
                name++;
            }
            printf("interface %s\n", name);
        }
        int sock = socket(AF_INET, SOCK_DGRAM, 0);
        struct ifreq request;
        memset(&request, 0, sizeof(request));
        strcpy(request.ifr_name, "lo");
        if (ioctl(sock, SIOCGIFFLAGS, &request) == 0) {
            printf("lo %s\n", (request.ifr_flags & IFF_UP) ? "up" : "down");
        }
        int tcp = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
        int connected = connect(tcp, (struct sockaddr *)&address, sizeof(address));
        printf("connect %s\n", connected == 0 ? "ok" : strerror(errno));
        return 0;
    }
    if (strcmp(mode, "mount-tmpfs") == 0 && argc >= 3) {
        if (mount("jobworker-test", argv[2], "tmpfs", 0, NULL) != 0) {
            printf("mount failed: %s\n", strerror(errno));
            return 1;
        }
        say("mounted\n");
        wait_forever();
    }
    if (strcmp(mode, "print-credentials") == 0) {
        uid_t real_uid, effective_uid, saved_uid;
        gid_t real_gid, effective_gid, saved_gid;
        getresuid(&real_uid, &effective_uid, &saved_uid);
        getresgid(&real_gid, &effective_gid, &saved_gid);
        printf("uid %u %u %u\n", real_uid, effective_uid, saved_uid);
        printf("gid %u %u %u\n", real_gid, effective_gid, saved_gid);
        printf("groups %d\n", getgroups(0, NULL));
        printf("no-new-privileges %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
        FILE *status = fopen("/proc/self/status", "r");
        char line[256];
        while (status != NULL && fgets(line, sizeof(line), status) != NULL) {
            if (strncmp(line, "CapEff:", 7) == 0) {
                printf("effective-capabilities %s", line + 7 + strspn(line + 7, " \t"));
            }
        }
        return 0;
    }
    if (strcmp(mode, "try-open") == 0 && argc >= 4) {
        // try-open read|write PATH...: one line per path, "PATH ok" or "PATH <strerror>".
        int flags = strcmp(argv[2], "write") == 0 ? O_WRONLY : O_RDONLY;
        for (int index = 3; index < argc; index++) {
            int fd = open(argv[index], flags);
            printf("%s %s\n", argv[index], fd >= 0 ? "ok" : strerror(errno));
        }
        return 0;
    }
    if (strcmp(mode, "try-lock") == 0 && argc == 3) {
        // Tries a POSIX write lock on argv[2]: "locked" or why not.
        int fd = open(argv[2], O_RDWR);
        struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        printf("%s\n", fd >= 0 && fcntl(fd, F_SETLK, &lock) == 0 ? "locked" : strerror(errno));
        return 0;
    }
    if (strcmp(mode, "hostname") == 0) {
        char name[256] = {0};
        gethostname(name, sizeof(name) - 1);
        printf("%s\n", name);
        return 0;
    }
    if (strcmp(mode, "daemon") == 0) {
        // Double fork: a daemon in a session of its own that ignores SIGTERM; the job then waits.
        int ready[2];
        if (pipe(ready) != 0) {
            return 122;
        }
        if (fork() == 0) {
            setsid();
            if (fork() == 0) {
                signal(SIGTERM, SIG_IGN);
                close(ready[0]);
                close(ready[1]);
                wait_forever();
            }
            _exit(0);
        }
        close(ready[1]);
        char byte;
        while (read(ready[0], &byte, 1) > 0) {
        }
        say("ready\n");
        wait_forever();
    }
    if (strcmp(mode, "orphans") == 0 && argc >= 3) {
        // Leaves COUNT orphans (children of exited children) that exit at once, waits until they
        // have exited, then counts zombies in /proc until there are none (the init reaps them) or
        // five seconds have passed, and prints the count.
        int count = atoi(argv[2]);
        int done[2];
        if (pipe(done) != 0) {
            return 122;
        }
        for (int i = 0; i < count; i++) {
            pid_t child = fork();
            if (child == 0) {
                if (fork() == 0) {
                    close(done[0]);
                    _exit(0);  // the orphan: its end closes its copy of done[1]
                }
                _exit(0);
            }
            waitpid(child, NULL, 0);
        }
        close(done[1]);
        char byte;
        while (read(done[0], &byte, 1) > 0) {
        }
        int zombies = 0;
        for (int attempt = 0; attempt < 5000; attempt++) {
            zombies = 0;
            DIR *directory = opendir("/proc");
            struct dirent *entry;
            while ((entry = readdir(directory)) != NULL) {
                char path[300], stat[512];
                snprintf(path, sizeof(path), "/proc/%s/stat", entry->d_name);
                FILE *file = fopen(path, "r");
                if (file == NULL) {
                    continue;
                }
                if (fgets(stat, sizeof(stat), file) != NULL) {
                    char *close_paren = strrchr(stat, ')');
                    if (close_paren != NULL && close_paren[2] == 'Z') {
                        zombies++;
                    }
                }
                fclose(file);
            }
            closedir(directory);
            if (zombies == 0) {
                break;
            }
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);
        }
        printf("zombies %d\n", zombies);
        return 0;
    }
    fprintf(stderr, "%s: unknown mode or arguments: %s\n", argv[0], mode);
    return 2;
}
