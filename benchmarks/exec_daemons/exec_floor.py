"""The interpreter's floor: ``python -m exec_floor`` sends READY=1, nothing more.

No event loop, no logging, no drivers: what any Python daemon pays before
its own code runs, started the same way as the others (``python -m``), and
then the same wait for SIGTERM and a clean exit.
"""

from __future__ import annotations

import os
import signal
import socket

WAIT = {signal.SIGTERM, signal.SIGINT}
# blocked before READY=1, so a SIGTERM sent right after it waits for sigwait
# instead of killing the process by its default action
signal.pthread_sigmask(signal.SIG_BLOCK, WAIT)
address = os.environ.get("NOTIFY_SOCKET")
if address:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1", address)
signal.sigwait(WAIT)
