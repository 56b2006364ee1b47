"""A local SQS (moto) for ``make run``: quiet, and the last process to stop.

The worker polls SQS several times a second, so the request log is switched off. On SIGTERM the
server stays up a few seconds more, so the worker's warm shutdown can finish its last SQS calls
before the endpoint goes away (honcho stops every process at once).

Usage: python scripts/sqs_local.py HOST PORT
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time

from moto.server import ThreadedMotoServer

SHUTDOWN_GRACE_SECONDS = 3.0


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    print(f"local SQS (moto) listening on http://{host}:{port}", flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    while not stopping.wait(1.0):
        pass
    time.sleep(SHUTDOWN_GRACE_SECONDS)
    server.stop()


if __name__ == "__main__":
    main()
