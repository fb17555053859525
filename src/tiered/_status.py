"""The status file: a daemon's state as JSON, for exec probes and scripts.

A daemon rewrites the file at every change of its state or of a driver's
status; ``tiered probe`` (tiered/_probe.py) reads it.  The file is one JSON
object on one line::

    {"runtime": "virtd", "pid": 4242, "state": "running", "ready": true,
     "live": true, "drivers": {"secrets": "running", "qemu": "running"},
     "updated": 1795682349.12}

Each write goes to a temporary file in the same directory, which then
replaces the file (``os.replace``, atomic on POSIX and Windows): a reader
sees the old content or the new, never a part.  The file is not fsync'ed: it
describes a live process, and after a crash of the machine there is no
process left to describe.

This module imports only the standard library's cheapest modules (``json``,
``os``, ``time``; ``logging`` on the first failed write): the probe, run by
kubelet every few seconds, imports it.
"""

from __future__ import annotations

import json
import os
import time
from _thread import allocate_lock  # threading's lock, without importing threading

TYPE_CHECKING = False  # not typing's: the probe need not import typing (3.5 ms)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Final

__all__ = [
    "DRIVER_STATUSES",
    "STATES",
    "StatusError",
    "StatusFile",
    "StatusFileMissing",
    "read_status",
]

#: The states of a daemon, in the order it goes through them.
STATES: Final = ("starting", "running", "restarting", "stopping", "stopped")
#: The statuses of a driver.
DRIVER_STATUSES: Final = (
    "pending",
    "starting",
    "running",
    "restarting",
    "failed",
    "skipped",
    "cancelled",
    "stopped",
)

_OPEN_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


class StatusFile:
    """The status file of one daemon, rewritten whole at every change.

    Example::

        status = StatusFile("/run/virtd/status.json", runtime="virtd")
        status.write(
            state="starting", ready=False, live=True,
            drivers={"secrets": "starting", "qemu": "pending"},
        )

    :meth:`write` never raises an ``OSError`` into the daemon: a failed write
    (no such directory, disk full, read-only file system) is logged as a
    warning on the ``tiered`` logger, once, and the next writes keep trying;
    once a write succeeds again, the next failure is logged again.

    Each write serializes every driver: a daemon with very many drivers
    should coalesce the changes that come in one burst into one write.
    """

    def __init__(self, path: str | os.PathLike[str], runtime: str) -> None:
        self.path = os.fspath(path)
        self.runtime = runtime
        self._failing = False
        # writes from several threads share the temporary name: one at a time
        self._lock = allocate_lock()

    def write(
        self, *, state: str, ready: bool, live: bool, drivers: Mapping[str, str]
    ) -> None:
        """Replace the file with this state, atomically.

        Args:
            state: one of :data:`STATES`.
            ready: true exactly while ``state`` is ``"running"``.
            live: false once the run failed.
            drivers: each driver's name and status (one of
                :data:`DRIVER_STATUSES`), in tier order.
        """
        data = {
            "runtime": self.runtime,
            "pid": os.getpid(),
            "state": state,
            "ready": ready,
            "live": live,
            "drivers": dict(drivers),
            "updated": time.time(),
        }
        payload = (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")
        # one temporary name per process (a name left by a crashed process
        # of the same pid is truncated); the lock keeps threads apart
        tmp = f"{self.path}.{data['pid']}.tmp"
        with self._lock:
            self._write(tmp, payload)

    def _write(self, tmp: str, payload: bytes) -> None:
        try:
            fd = os.open(tmp, _OPEN_FLAGS, 0o644)
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if not self._failing:
                self._failing = True
                import logging  # here: only a failure needs it

                logging.getLogger("tiered").warning(
                    "cannot write the status file %s: %s (will keep trying)",
                    self.path,
                    exc.strerror or exc,
                )
            return
        self._failing = False


class StatusError(Exception):
    """The status file cannot be read, or is not a status file.

    Its message says why, on one line, naming the file.
    """


class StatusFileMissing(StatusError):
    """There is no status file (yet): the daemon never wrote one here."""


#: The keys of a status file and the types of their values.
_KEYS: Final[tuple[tuple[str, type | tuple[type, ...], str], ...]] = (
    ("runtime", str, "a string"),
    ("pid", int, "a process id"),
    ("state", str, "a string"),
    ("ready", bool, "true or false"),
    ("live", bool, "true or false"),
    ("drivers", dict, "an object"),
    ("updated", (int, float), "a number"),
)


def read_status(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a status file written by :class:`StatusFile`.

    Returns:
        The object, with every key of a status file and values of the right
        types (``pid`` a positive integer, ``drivers`` strings to strings).

    Raises:
        StatusFileMissing: there is no file at ``path``.
        StatusError: the file cannot be read, is not JSON, or is not a
            status file (a key missing, a value of the wrong type).
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        msg = f"missing: no status file {name}"
        raise StatusFileMissing(msg) from None
    except OSError as exc:
        msg = f"unreadable: {name}: {exc.strerror or exc}"
        raise StatusError(msg) from None
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        if isinstance(exc, json.JSONDecodeError):
            why = exc.msg if raw.strip() else "the file is empty"
        else:
            why = "not UTF-8"
        msg = f"invalid: {name} is not JSON ({why})"
        raise StatusError(msg) from None
    if not isinstance(data, dict):
        msg = f"invalid: {name} is not a status file (not a JSON object)"
        raise StatusError(msg)
    missing = [key for key, _, _ in _KEYS if key not in data]
    if missing:
        msg = f"invalid: {name} is not a status file (no {', '.join(missing)})"
        raise StatusError(msg)
    for key, types, what in _KEYS:
        value = data[key]
        # bool is an int: true is no pid, nor a time
        wrong = not isinstance(value, types) or (
            isinstance(value, bool) and types is not bool
        )
        if key == "pid" and not wrong:
            wrong = value <= 0  # os.kill(0, 0) would probe our process group
        if wrong:
            msg = f"invalid: {name}: {key} is {_short(value)}, not {what}"
            raise StatusError(msg)
    drivers = data["drivers"]
    for driver, status in drivers.items():
        if not isinstance(status, str):
            msg = f"invalid: {name}: the status of driver {driver!r} is {_short(status)}, not a string"
            raise StatusError(msg)
    return data


def _short(value: object) -> str:
    """A value as JSON, cut to fit in a line."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
