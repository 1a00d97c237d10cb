#!/usr/bin/env python3
"""Stock grpcio server-streaming throughput over TLS on loopback, as an anchor for our streaming benchmark.

usage: grpcio_streaming_baseline.py CERT KEY CA BYTES [CHUNK]
The server (a separate process, so the two ends do not share one interpreter lock) answers one
server-streaming call with BYTES zero bytes as messages of CHUNK bytes (default 131072 - 32, what
our server sends per message); the client (this process) receives them, summing their lengths, and
prints the throughput in MB/s. A 1 MiB warm-up call first takes the connection and the TLS handshake
out of the timed call. Only grpcio is needed: the method is registered through a generic handler
with no serializers, so messages are raw bytes and no generated code is involved.
grpcio (BoringSSL) negotiates TLS 1.3 by default but exposes no way to require it as a minimum,
unlike tls_baseline.py, which does.
"""
import multiprocessing
import sys
import time
from concurrent import futures

import grpc

METHOD = "/baseline.Baseline/Zeros"


def serve(cert, key, chunk, ports):
    payload = bytes(chunk)

    def zeros(request, context):
        # The request is the byte count, so the warm-up and the timed call share one method.
        full, remainder = divmod(int(request), chunk)
        for _ in range(full):
            yield payload
        if remainder:
            yield payload[:remainder]

    with open(cert, "rb") as c, open(key, "rb") as k:
        credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("baseline.Baseline", {"Zeros": grpc.unary_stream_rpc_method_handler(zeros)})]
    )
    ports.put(server.add_secure_port("127.0.0.1:0", credentials))
    server.start()
    server.wait_for_termination()


def main():
    cert, key, ca, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    chunk = int(sys.argv[5]) if len(sys.argv) > 5 else 131072 - 32
    # spawn rather than fork: grpcio's core does not survive being forked once it is initialised.
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    server = context.Process(target=serve, args=(cert, key, chunk, ports), daemon=True)
    server.start()
    port = ports.get()
    with open(ca, "rb") as c:
        credentials = grpc.ssl_channel_credentials(root_certificates=c.read())
    # The certificate names localhost and 127.0.0.1; the default receive limit (4 MiB) may be below CHUNK.
    with grpc.secure_channel(f"localhost:{port}", credentials, options=[("grpc.max_receive_message_length", max(chunk, 4 << 20))]) as channel:
        zeros = channel.unary_stream(METHOD)
        for _ in zeros(str(1 << 20).encode()):
            pass
        start = time.perf_counter()
        received = sum(len(message) for message in zeros(str(total).encode()))
        elapsed = time.perf_counter() - start
    server.terminate()
    if received != total:
        sys.exit(f"received {received} bytes, expected {total}")
    print(f"{received / elapsed / 1e6:.0f}")


if __name__ == "__main__":
    main()
