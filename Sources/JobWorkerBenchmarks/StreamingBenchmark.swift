import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// `JobWorkerBenchmarks streaming [MIB] [--state-dir DIR]`: StreamJobOutput throughput, in one
/// run beside its two anchors on the same certificates: a plain TLS 1.3 transfer
/// (`scripts/tls_baseline.py`) and stock grpcio server streaming
/// (`scripts/grpcio_streaming_baseline.py`). Clients run as processes of their own (as jobctl).
///
/// - one reader of a finished MIB-MiB output, with the server's CPU seconds per GB;
/// - a live reader of a job that writes MIB MiB as fast as it can, beside the same job with no
///   reader (does a reader slow the job?);
/// - 20 readers of the finished output together, with the server's peak RSS over its idle RSS.
func runStreamingBenchmark(_ arguments: [String]) async throws {
    let mebibytes = arguments.first.flatMap(Int.init) ?? 1024
    let bytes = UInt64(mebibytes) << 20
    let root = arguments.firstIndex(of: "--state-dir").map { arguments[$0 + 1] } ?? "/dev/shm"
    // Output uncapped: the job writes MIB MiB whatever the server's default cap.
    let uncapped: (inout WorkerConfiguration) -> Void = { $0.policy.maximumOutputBytes = nil }
    try await withBenchmarkServer(name: "streaming", root: root, configure: uncapped) { server in
        let (port, worker, directory) = (server.port, server.worker, server.directory)
        let writer = ["-c", "\(bytes)", "/dev/zero"]
        // A log in tmpfs (the default state directory here) is charged to the job that writes
        // it: the writing job gets room for it, so that its memory limit does not pace it.
        let roomy = ResourceLimits(memoryBytes: 4 * bytes + (1 << 30))

        let tls = try anchor("tls_baseline.py", directory: directory, bytes: bytes)
        let grpcio = try anchor("grpcio_streaming_baseline.py", directory: directory, bytes: bytes)

        let finished = try await worker.start(
            command: "/usr/bin/head", arguments: writer, owner: "bench", limits: roomy)
        _ = try await worker.waitUntilEnded(finished.id)
        let cpuBefore = processCPUSeconds()
        let one = try await measureStreamingFromOtherProcesses(
            port: port, directory: directory, job: finished.id.description, clients: 1)
        let cpuPerGB = (processCPUSeconds() - cpuBefore) / (Double(bytes) / 1e9)

        // The same job alone, then with a live reader attached as it starts.
        let alone = try await worker.start(command: "/usr/bin/head", arguments: writer, owner: "bench", limits: roomy)
        let aloneEnded = try await worker.waitUntilEnded(alone.id)
        let aloneRate = Double(bytes) / aloneEnded.endedAt!.timeIntervalSince(aloneEnded.startedAt) / 1e6
        let followed = try await worker.start(
            command: "/usr/bin/head", arguments: writer, owner: "bench", limits: roomy)
        let printed = try await runClientProcess(
            ["load-client", "follow", "\(port)", directory, "1", followed.id.description], directory: directory)
        let followedEnded = try await worker.waitUntilEnded(followed.id)
        let fields = printed.split(whereSeparator: \.isWhitespace).compactMap { Int64($0) }
        let received = Double(fields[0])
        let readerSeconds = Double(fields[2] - fields[1]) / 1e9
        let jobSeconds = followedEnded.endedAt!.timeIntervalSince(followedEnded.startedAt)
        let lastByteAfterEnd = Double(fields[2] - followedEnded.endedAt!.nanosecondsSince1970) / 1e6

        let idleRSS = memoryKiB("VmRSS")
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)  // resets VmHWM
        let twenty = try await measureStreamingFromOtherProcesses(
            port: port, directory: directory, job: finished.id.description, clients: 20)
        let peakRSS = memoryKiB("VmHWM")

        print("\n| StreamJobOutput, \(mebibytes) MiB | MB/s | share of plain TLS 1.3 |")
        print("|---|---|---|")
        print(String(format: "| plain TLS 1.3 transfer (Python ssl, the anchor) | %.0f | 1.00 |", tls))
        print(String(format: "| stock grpcio server streaming | %.0f | %.2f |", grpcio, grpcio / tls))
        print(
            String(
                format: "| one reader of a finished output (server %.2f CPU s/GB) | %.0f | %.2f |", cpuPerGB,
                one.megabytesPerSecond, one.megabytesPerSecond / tls))
        print(
            String(
                format: "| 20 readers together (server peak RSS %d MiB over %d MiB idle) | %.0f | %.2f |",
                (peakRSS - idleRSS) / 1024, idleRSS / 1024, twenty.megabytesPerSecond, twenty.megabytesPerSecond / tls))
        print(String(format: "| the job writing, no reader | %.0f | |", aloneRate))
        print(
            String(
                format: "| the job writing, one live reader | %.0f | |", Double(bytes) / jobSeconds / 1e6))
        print(
            String(
                format: "| the live reader receiving (last byte %.0f ms after the job's end) | %.0f | |",
                lastByteAfterEnd, received / readerSeconds / 1e6))
    }
}

/// MB/s of one of the Python anchors, run on the benchmark's certificates.
private func anchor(_ script: String, directory: String, bytes: UInt64) throws -> Double {
    let python = Process()
    python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/" + script).path
    python.arguments = [
        "python3", path, directory + "/server.pem", directory + "/server-key.pem", directory + "/ca.pem", "\(bytes)",
    ]
    let pipe = Pipe()
    python.standardOutput = pipe
    try python.run()
    let printed = pipe.fileHandleForReading.readDataToEndOfFile()
    python.waitUntilExit()
    return Double(String(decoding: printed, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan
}

/// User and system CPU seconds of this process so far.
private func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// A "VmRSS:   1234 kB" line of /proc/self/status, in KiB.
private func memoryKiB(_ key: String) -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix(key + ":") } ?? ""
    return Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "") ?? 0
}
