"""``python -m tiered ARGS``, with every socket operation written to a log.

tests/test_security.py starts the ``tiered`` command through this file::

    AUDIT_LOG=/tmp/audit.jsonl python tests/daemons/audited.py run MODULE:ATTR

Before tiered is imported, a ``sys.addaudithook`` hook (PEP 578) records the
audit events ``socket.__new__``, ``socket.bind``, ``socket.connect``,
``socket.sendto`` and ``socket.sendmsg``, and ``socket.socket.listen`` is
wrapped to record its calls too (``listen`` raises no audit event).  Each is
one JSON line ``[event, details]`` in the file ``$AUDIT_LOG``.  Then the
command runs as ``python -m tiered`` would.  Only sockets made by Python's
``socket`` module are seen: uvloop makes its own in C, which is why the test
also reads ``/proc``.
"""

from __future__ import annotations

import json
import os
import runpy
import socket
import sys
from typing import Any

_log = open(os.environ["AUDIT_LOG"], "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open for the life of the process

SOCKET_EVENTS = {
    "socket.__new__",
    "socket.bind",
    "socket.connect",
    "socket.sendto",
    "socket.sendmsg",
}


def _text(value: object) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, int | str | float) or value is None:
        return value
    if isinstance(value, tuple | list):
        return [_text(v) for v in value]
    return type(value).__name__


def _record(event: str, details: object) -> None:
    _log.write(json.dumps([event, _text(details)]) + "\n")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in SOCKET_EVENTS:
        return
    # args[0] is the socket, half-made for socket.__new__: keep the rest
    _record(event, args[1:])


_listen = socket.socket.listen


def _recorded_listen(self: socket.socket, *args: Any) -> None:
    _record("socket.listen", [int(self.family), int(self.type)])
    _listen(self, *args)


socket.socket.listen = _recorded_listen  # type: ignore[method-assign,assignment]
sys.addaudithook(_hook)
sys.argv = ["tiered", *sys.argv[1:]]
runpy.run_module("tiered", run_name="__main__", alter_sys=True)
