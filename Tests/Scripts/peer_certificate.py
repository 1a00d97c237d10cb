#!/usr/bin/env python3
"""Connects to PROBE_SERVER over TLS with the client certificate (as health_probe.py) and prints
"same" if the server presents the certificate in the PEM file argv[1], else "different"."""
import os
import socket
import ssl
import sys

context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.load_verify_locations(os.environ["PROBE_CA"])
context.load_cert_chain(os.environ["PROBE_CERT"], os.environ["PROBE_KEY"])
context.set_alpn_protocols(["h2"])
host, port = os.environ["PROBE_SERVER"].rsplit(":", 1)
with socket.create_connection((host, int(port)), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname=host) as tls:
        presented = tls.getpeercert(binary_form=True)
with open(sys.argv[1]) as f:
    expected = ssl.PEM_cert_to_DER_cert(f.read())
print("same" if presented == expected else "different", flush=True)
