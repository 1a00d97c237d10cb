#if canImport(Glibc)
    import Glibc
#endif

/// Reading and writing cgroup control files, with errors that name the file and the value.
///
/// Writes use O_CREAT so the same code runs against a fake cgroup tree in a temporary directory
/// (the unit tests); on a real cgroup file system every control file already exists.
enum CgroupFiles {
    static func write(_ value: String, to path: String) throws(JobWorkerError) {
        let descriptor = try FileDescriptor("cgroup: opening \(path)") {
            open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }
        let bytes = Array(value.utf8)
        let written = try systemCall("cgroup: writing \"\(value)\" to \(path)") {
            Glibc.write(descriptor.rawValue, bytes, bytes.count)
        }
        guard written == bytes.count else {
            throw JobWorkerError.system("cgroup: short write of \"\(value)\" to \(path)", errno: EIO)
        }
    }

    /// The file's contents, or nil if it cannot be read (a missing optional file, a removed cgroup).
    static func read(_ path: String) -> String? {
        guard let descriptor = try? FileDescriptor("opening \(path)", { open(path, O_RDONLY | O_CLOEXEC) }) else {
            return nil
        }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = Glibc.read(descriptor.rawValue, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            contents += buffer[0..<count]
        }
        return String(decoding: contents, as: UTF8.self)
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// A single number file such as `memory.peak`; nil if missing or not a number ("max").
    static func number(_ path: String) -> UInt64? {
        read(path).flatMap { UInt64($0.trimmingWhitespace()) }
    }

    /// The value of `key` in a flat keyed file such as `memory.events` or `cpu.stat`.
    static func keyedValue(_ key: String, in path: String) -> UInt64? {
        guard let contents = read(path) else { return nil }
        for line in contents.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2 && fields[0] == key { return UInt64(fields[1]) }
        }
        return nil
    }

    static func makeDirectory(_ path: String) throws(JobWorkerError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw JobWorkerError.system("cgroup: creating \(path)")
        }
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
