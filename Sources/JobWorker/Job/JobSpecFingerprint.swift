import Crypto

extension JobSpec {
    /// What tells two starts with one client token apart: a SHA-256 of everything the spec asks
    /// for but the token, in a canonical form (maps sorted, each field tagged and length-prefixed),
    /// so that a retry of the same request matches across restarts and a different one never does.
    ///
    /// Stable by construction: it is kept in the job's record. A field added to `JobSpec` later
    /// must enter only when it differs from its default, so that earlier records still match.
    var fingerprint: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.append(tag: 1, command)
        encoder.append(tag: 2, count: arguments.count)
        for argument in arguments { encoder.append(tag: 3, argument) }
        encoder.append(tag: 4, count: environment.count)
        for (name, value) in environment.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            encoder.append(tag: 5, name)
            encoder.append(tag: 6, value)
        }
        if let workingDirectory { encoder.append(tag: 7, workingDirectory) }
        for limit in [
            UInt64(limits.cpuMillis), limits.memoryBytes, limits.ioReadBytesPerSecond, limits.ioWriteBytesPerSecond,
            limits.ioReadOpsPerSecond, limits.ioWriteOpsPerSecond, UInt64(limits.maxProcesses),
        ] {
            encoder.append(tag: 8, count: Int(truncatingIfNeeded: limit))
        }
        if let standardInput { encoder.append(tag: 9, bytes: standardInput) }
        encoder.append(tag: 10, name)
        encoder.append(tag: 11, count: labels.count)
        for (key, value) in labels.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            encoder.append(tag: 12, key)
            encoder.append(tag: 13, value)
        }
        encoder.append(tag: 14, count: Int(stopSignal))
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            encoder.append(tag: 15, count: Int(truncatingIfNeeded: seconds))
            encoder.append(tag: 16, count: Int(truncatingIfNeeded: attoseconds))
        }
        return Array(encoder.hash.finalize())
    }
}

/// Fields as tag, length and bytes into a running SHA-256: no two different sequences of fields
/// feed it the same bytes.
private struct CanonicalEncoder {
    var hash = SHA256()

    mutating func append(tag: UInt8, bytes: some Collection<UInt8>) {
        hash.update(data: [tag])
        appendLength(bytes.count)
        hash.update(data: Array(bytes))
    }

    mutating func append(tag: UInt8, _ text: String) {
        append(tag: tag, bytes: text.utf8)
    }

    mutating func append(tag: UInt8, count: Int) {
        hash.update(data: [tag])
        appendLength(count)
    }

    private mutating func appendLength(_ length: Int) {
        let value = UInt64(bitPattern: Int64(length))
        hash.update(data: (0..<8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) })
    }
}
