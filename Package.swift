// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "jobworker",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "JobWorker", targets: ["JobWorker"]),
        .executable(name: "jobworkerd", targets: ["jobworkerd"]),
        .executable(name: "jobctl", targets: ["jobctl"]),
    ],
    targets: [
        // Process creation only: clone3 + the async-signal-safe steps before exec. Must be C.
        .target(name: "CJobLauncher"),
        // Linux event headers (epoll, eventfd, inotify) that the Glibc module does not export.
        .target(name: "CLinuxEvents"),
        // The job library: lifecycle, output storage and streaming.
        .target(name: "JobWorker", dependencies: ["CJobLauncher", "CLinuxEvents"]),
        .executableTarget(name: "jobworkerd", dependencies: ["JobWorker"]),
        .executableTarget(name: "jobctl"),
        // Measures the library beside bare posix_spawn and cat (see BENCHMARKS.md).
        .executableTarget(name: "JobWorkerBenchmarks", dependencies: ["JobWorker"]),
        // A small C program whose behaviour the tests control (exit codes, signals, output patterns).
        .executableTarget(name: "JobWorkerTestHelper", path: "Tests/JobWorkerTestHelper"),
        .testTarget(name: "JobWorkerTests", dependencies: ["JobWorker", "CLinuxEvents", "JobWorkerTestHelper"]),
    ],
    swiftLanguageModes: [.v6]
)
