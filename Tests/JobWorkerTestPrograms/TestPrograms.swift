import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The programs the tests run, for both test targets.
public enum TestPrograms {
    /// Where the build put the test binary, jobworker-init, jobworkerd, jobctl and the test helper.
    public static let buildDirectory: URL = {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // On Linux the test bundle is `<build>/<package>PackageTests.xctest`, a plain executable.
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("JobWorkerTestHelper").path),
            directory.path != "/"
        {
            directory = directory.deletingLastPathComponent()
        }
        return directory
    }()

    /// The test helper program (Tests/JobWorkerTestHelper), as a copy in
    /// `/var/lib/jobworker-test-programs-<uid>/` (as root; else under the temp directory), mode
    /// 0755, replaced atomically. Jobs run as users of their own, the build directory may be one
    /// they cannot reach (a checkout under /root is hidden from them), and their /tmp is their own.
    public static let helperPath: String = {
        let built = buildDirectory.appendingPathComponent("JobWorkerTestHelper").path
        let parent = geteuid() == 0 ? "/var/lib" : NSTemporaryDirectory()
        let directory = parent + "/jobworker-test-programs-\(geteuid())"
        mkdir(directory, 0o755)
        var info = stat()
        precondition(
            lstat(directory, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR && info.st_uid == geteuid(),
            "\(directory) is not a directory of ours")
        chmod(directory, 0o755)
        let staging = directory + "/.JobWorkerTestHelper-\(getpid())"
        unlink(staging)
        precondition((try? FileManager.default.copyItem(atPath: built, toPath: staging)) != nil, "cannot copy \(built)")
        chmod(staging, 0o755)
        precondition(rename(staging, directory + "/JobWorkerTestHelper") == 0, "cannot install the test helper")
        return directory + "/JobWorkerTestHelper"
    }()
}

extension TestPrograms {
    /// A fresh directory (0755) that jobs can see: beside the test helper, outside the temporary
    /// directory (every job has a /tmp of its own) and outside /root and /home (hidden from jobs).
    public static func makeJobVisibleDirectory() throws -> String {
        let parent = URL(fileURLWithPath: helperPath).deletingLastPathComponent().path
        var template = Array((parent + "/visible-XXXXXX").utf8CString)
        guard let path = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        chmod(path, 0o755)
        return String(cString: path)
    }
}

/// A seeded generator (SplitMix64), so that a failing random input can be replayed.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
