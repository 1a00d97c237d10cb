#!/usr/bin/env python3
"""A reflection client, with grpcio-reflection's descriptor database, against jobworkerd over mTLS.

Prints, one a line:
    services: NAMES        the services listed over grpc.reflection.v1alpha (grpcio-reflection's)
    v1: NAMES              the same over grpc.reflection.v1
    missing: CODE          the error code for a symbol the server lacks
    started: STATE         a StartJob built only from the descriptors reflection returned
    output: TEXT           that job's output, read with a StreamJobOutput built the same way

Connection from the environment, as health_probe.py.
"""
import os
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

sys.path.insert(0, os.path.dirname(__file__))
from health_probe import channel  # noqa: E402


def main():
    connection = channel()
    database = ProtoReflectionDescriptorDatabase(connection)
    print("services: " + ",".join(sorted(database.get_services())), flush=True)

    # v1 speaks the same messages under another service name.
    v1 = connection.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="jobworker.v1.NoSuchThing"),
    ]
    listed, missing = list(v1(iter(requests), timeout=10))
    print("v1: " + ",".join(sorted(s.name for s in listed.list_services_response.service)), flush=True)
    print("missing: %d" % missing.error_response.error_code, flush=True)

    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("jobworker.v1.JobWorker")

    def call(name, **fields):
        method = service.methods_by_name[name]
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        path = "/jobworker.v1.JobWorker/" + name
        kind = connection.unary_stream if method.server_streaming else connection.unary_unary
        stub = kind(path, request_serializer=request_class.SerializeToString,
                    response_deserializer=response_class.FromString)
        return stub(request_class(**fields), timeout=30)

    started = call("StartJob", command="/bin/echo", args=["reflected"]).status
    print("started: " + pool.FindEnumTypeByName("jobworker.v1.JobState").values_by_number[started.state].name,
          flush=True)
    call("WaitJob", id=started.id)
    text = b"".join(chunk.data for chunk in call("StreamJobOutput", id=started.id))
    print("output: " + text.decode().strip(), flush=True)


if __name__ == "__main__":
    main()
