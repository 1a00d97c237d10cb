import Foundation
import Testing

@Suite(
    "gRPC server reflection", .serialized,
    .enabled(if: canUseCgroups, "runs jobworkerd as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(2)))
struct ReflectionTests {
    init() throws {
        try requireInstalled(
            PythonGRPC.available("grpc", "grpc_reflection.v1alpha.proto_reflection_descriptor_database"),
            "python3 with grpcio and grpcio-reflection")
    }

    @Test("v1 and v1alpha list every service; the descriptors they return build a StartJob that runs a job")
    func describesTheAPI() throws {
        let daemon = try RunningDaemon()
        let printed = try PythonGRPC.run("reflection_probe.py", daemon: daemon)
        let services = [
            "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
            "jobworker.v1.JobWorker",
        ].joined(separator: ",")
        #expect(
            printed.split(separator: "\n").map(String.init) == [
                "services: \(services)", "v1: \(services)", "missing: 5", "started: JOB_STATE_RUNNING",
                "output: reflected",
            ], "\(printed)")
        // The job is there for jobctl too, owned by the reflection client's identity.
        let listed = try jobctl("list", daemon: daemon).text
        #expect(listed.contains("/bin/echo reflected"), "\(listed)")
    }
}
