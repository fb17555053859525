"""systemd's notify protocol (sd_notify(3)), written against its documentation.

A service of ``Type=notify`` finds the path of an ``AF_UNIX`` datagram socket
in ``$NOTIFY_SOCKET`` (a file system path, or an abstract name starting with
``@``) and sends newline-separated ``KEY=VALUE`` assignments to it:
``READY=1``, ``RELOADING=1`` (with ``MONOTONIC_USEC=``), ``STOPPING=1``,
``STATUS=...``, ``EXTEND_TIMEOUT_USEC=...``, ``WATCHDOG=1``.

Sending never blocks and never raises: a daemon must not die because its
supervisor went away.  A bad ``NOTIFY_SOCKET`` is one logged warning, then
silence.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Notifier"]

log = logging.getLogger("tiered")


class Notifier:
    """Sends notifications to ``$NOTIFY_SOCKET``; does nothing when unset.

    Args:
        address: the socket's address; defaults to ``$NOTIFY_SOCKET``.
    """

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._target: str | bytes | None = None
        self._broken = False
        self.sent: list[str] = []  # what was sent, for the report and tests
        if not address:
            return
        if address.startswith("@"):
            self._target = b"\0" + address[1:].encode()
        elif address.startswith("/"):
            self._target = address
        else:
            self._warn(
                f"NOTIFY_SOCKET={address!r} is neither a path nor an abstract @name; "
                "not notifying systemd"
            )
            return
        try:
            self._sock = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
            )
            self._sock.setblocking(False)
        except OSError as exc:  # pragma: no cover - AF_UNIX missing
            self._warn(f"cannot open a socket for NOTIFY_SOCKET={address!r}: {exc}")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """A notifier for ``$NOTIFY_SOCKET`` (which may be unset)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        """True while notifications can still be sent."""
        return self._sock is not None and not self._broken

    def _warn(self, message: str) -> None:
        # a log warning, not warnings.warn: under -W error that would crash
        # the daemon, which is what this must never do
        self._broken = True
        log.warning("%s", message)

    def send(self, **fields: str | int) -> None:
        """Send one datagram of ``KEY=VALUE`` lines (keys as given, upper case)."""
        if not self.enabled:
            return
        # one line per field; a value may not contain a newline
        text = "\n".join(
            f"{key}={str(value).replace(chr(10), ' ')}" for key, value in fields.items()
        )
        try:
            assert self._sock is not None
            assert self._target is not None
            self._sock.sendto(text.encode(), self._target)
        except BlockingIOError:
            # systemd has not read its queue yet (net.unix.max_dgram_qlen):
            # drop this message, keep notifying; a watchdog that went quiet
            # for good would get the daemon killed
            log.debug("NOTIFY_SOCKET queue is full; dropped %r", text)
            return
        except OSError as exc:
            self._warn(
                f"cannot notify systemd at NOTIFY_SOCKET={self.address!r}: {exc}"
            )
            return
        self.sent.append(text)

    def ready(self, status: str | None = None) -> None:
        """``READY=1``: start-up (or a reload) is complete."""
        if status is None:
            self.send(READY=1)
        else:
            self.send(READY=1, STATUS=status)

    def reloading(self) -> None:
        """``RELOADING=1`` with the ``CLOCK_MONOTONIC`` time, as systemd requires."""
        self.send(
            RELOADING=1,
            MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000,
        )

    def stopping(self) -> None:
        """``STOPPING=1``: the shutdown began."""
        self.send(STOPPING=1)

    def status(self, text: str) -> None:
        """``STATUS=``: a free-text status line shown by ``systemctl status``."""
        self.send(STATUS=text)

    def extend_timeout(self, seconds: float) -> None:
        """``EXTEND_TIMEOUT_USEC=``: ask for that much more time from now."""
        self.send(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))

    def watchdog(self) -> None:
        """``WATCHDOG=1``: the keep-alive ping."""
        self.send(WATCHDOG=1)

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, if the watchdog is meant for us.

    ``WATCHDOG_PID``, when set, must be this process (sd_watchdog_enabled(3)).
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a number of microseconds", usec)
        return None
    return value / 2_000_000 if value > 0 else None
