// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "jobworker",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "JobWorker", targets: ["JobWorker"]),
        .executable(name: "jobworkerd", targets: ["jobworkerd"]),
        .executable(name: "jobctl", targets: ["jobctl"]),
        .executable(name: "jobworker-init", targets: ["jobworker-init"]),
    ],
    dependencies: [
        // Pinned exactly: Package.resolved is not shared, and builds must be reproducible.
        .package(url: "https://github.com/grpc/grpc-swift-2.git", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", exact: "1.4.0", traits: ["YAML"]),
        // Transitive only: named so that they too are pinned, and every build resolves one graph.
        .package(url: "https://github.com/apple/swift-algorithms.git", exact: "1.2.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", exact: "1.7.4"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", exact: "1.1.4"),
        .package(url: "https://github.com/apple/swift-atomics.git", exact: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections.git", exact: "1.6.0"),
        .package(url: "https://github.com/apple/swift-http-structured-headers.git", exact: "1.7.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", exact: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", exact: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-transport-services.git", exact: "1.28.0"),
        .package(url: "https://github.com/apple/swift-numerics.git", exact: "1.1.1"),
        .package(url: "https://github.com/apple/swift-system.git", exact: "1.8.1"),
    ],
    targets: [
        // Process creation only: clone3 + the async-signal-safe steps before exec. Must be C.
        .target(name: "CJobLauncher"),
        // Linux event headers (epoll, eventfd, inotify) that the Glibc module does not export.
        .target(name: "CLinuxEvents"),
        // The jobs' system-call filter, built once at startup with libseccomp (Debian:
        // libseccomp-dev); only the worker links it, never the init.
        .target(name: "CSeccompProfile", linkerSettings: [.linkedLibrary("seccomp")]),
        // The job library: lifecycle, output storage and streaming.
        .target(
            name: "JobWorker",
            dependencies: [
                "CJobLauncher", "CLinuxEvents", "CSeccompProfile",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]),
        // PID 1 of every job's PID namespace; starts the job with CJobLauncher. Plain static C:
        // `-nostartfiles` keeps swiftc's swiftrt.o (and with it the Swift runtime) out, so the
        // binary is ~750 KB and cheap to exec.
        .executableTarget(
            name: "jobworker-init",
            dependencies: ["CJobLauncher"],
            linkerSettings: [.unsafeFlags(["-static-executable", "-nostartfiles"])]
        ),
        // The gRPC API: the contract's generated code, the service over the library, authorization.
        .target(
            name: "JobWorkerAPI",
            dependencies: [
                "JobWorker", "CLinuxEvents",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "jobworkerd",
            dependencies: [
                "JobWorker", "JobWorkerAPI", "jobworker-init",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "jobctl",
            dependencies: [
                "JobWorkerAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Yams", package: "Yams"),
            ]),
        // Measures the library beside bare posix_spawn and cat (see BENCHMARKS.md).
        .executableTarget(
            name: "JobWorkerBenchmarks",
            dependencies: [
                "JobWorker", "JobWorkerAPI", "jobworker-init",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        // A small C program whose behaviour the tests control (exit codes, signals, output patterns).
        .executableTarget(name: "JobWorkerTestHelper", path: "Tests/JobWorkerTestHelper"),
        // Where both test targets find the programs they run (and the helper's copy jobs can run).
        .target(name: "JobWorkerTestPrograms", path: "Tests/JobWorkerTestPrograms"),
        .testTarget(
            name: "JobWorkerAPITests",
            dependencies: [
                "JobWorkerAPI", "JobWorkerTestHelper", "JobWorkerTestPrograms", "jobworker-init", "jobworkerd",
                "jobctl", "CLinuxEvents",
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "JobWorkerTests",
            dependencies: [
                "JobWorker", "CJobLauncher", "CLinuxEvents", "CSeccompProfile", "JobWorkerTestHelper",
                "JobWorkerTestPrograms",
                "jobworker-init",
                // To open a job database as another version would have left it.
                .product(name: "GRDB", package: "GRDB.swift"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
