// jobctl: the command-line client. It arrives with issue 6; until then it only prints usage.
print(
    """
    usage: jobctl <command> [options]

    Commands (not implemented yet): start, run, stop, status, logs, list.
    """)
