#!/usr/bin/env python3
"""A gRPC health client, with grpcio's own health-checking stubs, against jobworkerd over mTLS.

    health_probe.py check SERVICE   prints the status (SERVING, NOT_SERVING) or the error code
    health_probe.py watch SERVICE   prints each status as it arrives, then the code that ended it

Connection from the environment: PROBE_SERVER (host:port), PROBE_CA, PROBE_CERT, PROBE_KEY.
"""
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def channel():
    def read(name):
        with open(os.environ[name], "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("PROBE_CA"), private_key=read("PROBE_KEY"), certificate_chain=read("PROBE_CERT")
    )
    return grpc.secure_channel(os.environ["PROBE_SERVER"], credentials)


def main():
    mode, service = sys.argv[1], sys.argv[2]
    stub = health_pb2_grpc.HealthStub(channel())
    request = health_pb2.HealthCheckRequest(service=service)
    try:
        if mode == "check":
            response = stub.Check(request, timeout=10)
            print(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status), flush=True)
        else:
            for response in stub.Watch(request):
                print(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status), flush=True)
            print("END OK", flush=True)
    except grpc.RpcError as error:
        print(("END " if mode == "watch" else "") + error.code().name, flush=True)


if __name__ == "__main__":
    main()
