// jobworkerd: the gRPC API server. The server itself arrives with issue 5; until then this
// executable only explains what it will be.
print(
    """
    usage: jobworkerd [options]

    jobworkerd serves the jobworker gRPC API over mutual TLS.
    The API server is not implemented yet; use the JobWorker library directly.
    """)
