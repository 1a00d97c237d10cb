#!/usr/bin/env python3
"""A plain TLS 1.3 transfer over loopback, as the ceiling for gRPC streaming throughput.

usage: tls_baseline.py CERT KEY CA BYTES
The server (a separate process, so the two ends do not share one interpreter lock) sends BYTES zero bytes in 128 KiB writes; the client (this thread) reads
them into one reused buffer (recv_into: recv() would allocate a new bytes object per 16 KiB
record and measure Python's allocator instead of TLS) and prints the throughput in MB/s.
"""
import multiprocessing
import socket
import ssl
import sys
import time

cert, key, ca, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_context.minimum_version = ssl.TLSVersion.TLSv1_3
server_context.load_cert_chain(cert, key)
client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
client_context.minimum_version = ssl.TLSVersion.TLSv1_3
client_context.load_verify_locations(ca)

listener = socket.create_server(("127.0.0.1", 0))
port = listener.getsockname()[1]


def serve():
    connection, _ = listener.accept()
    with server_context.wrap_socket(connection, server_side=True) as tls:
        chunk = bytes(128 * 1024)
        sent = 0
        while sent < total:
            tls.sendall(chunk[: min(len(chunk), total - sent)])
            sent += min(len(chunk), total - sent)


server = multiprocessing.Process(target=serve)
server.start()
with client_context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost") as tls:
    start = time.perf_counter()
    received = 0
    buffer = memoryview(bytearray(1 << 20))
    while received < total:
        count = tls.recv_into(buffer)
        if not count:
            break
        received += count
    elapsed = time.perf_counter() - start
server.join()
print(f"{received / elapsed / 1e6:.0f}")
