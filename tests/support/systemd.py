"""A stand-in for systemd's notify socket: a real ``AF_UNIX`` datagram socket.

:class:`NotifyListener` binds a socket (a file in a fresh temporary
directory, or an abstract ``@name``) and reads every datagram in a thread as it
arrives, as PID 1 does: the kernel queue of a datagram socket is short
(``net.unix.max_dgram_qlen``, often 10), so a listener that reads late would
make the sender fail.  Tests give ``address`` to the daemon as
``NOTIFY_SOCKET`` and wait for messages with :meth:`wait_for`.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Literal, Self

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["NotifyListener", "fields"]

Kind = Literal["path", "abstract"]

#: The key of the marker :meth:`NotifyListener.sync` sends itself.
SYNC = "TIERED_TEST_SYNC"


def fields(message: str) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of one notify message, as a dict."""
    pairs = (line.partition("=") for line in message.split("\n") if line)
    return {key: value for key, _, value in pairs}


class NotifyListener:
    """Receives the notify datagrams a daemon sends, as systemd would.

    Args:
        kind: ``"path"`` for a socket file, ``"abstract"`` for an ``@name``.
    """

    def __init__(self, kind: Kind = "path") -> None:
        self.kind = kind
        self.messages: list[str] = []
        self.received_at: list[float] = []
        self._changed = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # short: sun_path holds 107 bytes, pytest's tmp_path can be longer
        self._dir = tempfile.mkdtemp(prefix="tiered-notify-")
        self.path = ""
        if kind == "path":
            self.path = os.path.join(self._dir, "notify.sock")
            self._sock.bind(self.path)
            self.address = self.path
        else:
            name = f"tiered-test-{os.getpid()}-{id(self):x}"
            self._sock.bind(b"\0" + name.encode())
            self.address = "@" + name
        self._sock.settimeout(0.05)
        self._closing = False
        self._syncs = 0
        self._seen: set[str] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> Self:
        self._reader.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading, close the socket and remove its directory."""
        self._closing = True
        if self._reader.is_alive():
            self._reader.join(timeout=5)
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _read(self) -> None:
        while not self._closing:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            with self._changed:
                if data.startswith(SYNC.encode()):
                    self._seen.add(data.decode())
                    self._changed.notify_all()
                    continue
                self.messages.append(data.decode())
                self.received_at.append(time.monotonic())
                self._changed.notify_all()

    def sync(self, timeout: float = 20.0) -> list[str]:
        """Every message sent before this call, once the reader has them all.

        A marker datagram goes through the same queue, behind whatever the
        daemon sent: once the reader saw it, it saw everything before it.
        Call it after the daemon exited, before asserting on what it sent.
        """
        with self._changed:
            self._syncs += 1
            marker = f"{SYNC}={self._syncs}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            target = (
                self.path if self.kind == "path" else b"\0" + self.address[1:].encode()
            )
            client.sendto(marker.encode(), target)
        deadline = time.monotonic() + timeout
        with self._changed:
            while marker not in self._seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    msg = f"the notify socket reader did not see {marker!r}"
                    raise AssertionError(msg)
                self._changed.wait(timeout=left)
            return list(self.messages)

    def timed(self) -> list[tuple[str, float]]:
        """Every message received so far, with when it arrived (monotonic)."""
        with self._changed:
            return list(zip(self.messages, self.received_at, strict=True))

    def received(self) -> list[str]:
        """Every message received so far, in order."""
        with self._changed:
            return list(self.messages)

    def wait_for(
        self,
        match: str | Callable[[str], bool],
        *,
        count: int = 1,
        timeout: float = 20.0,
    ) -> str:
        """Block until ``count`` messages matched; return the last of them.

        ``match`` is one ``KEY=VALUE`` line the message must contain, or a
        predicate on the whole message.
        """
        test = match if callable(match) else (lambda m: match in m.split("\n"))
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [m for m in self.messages if test(m)]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    msg = (
                        f"no {count} notify message(s) matching {match!r} within "
                        f"{timeout}s; received: {self.messages!r}"
                    )
                    raise AssertionError(msg)
                self._changed.wait(timeout=left)
