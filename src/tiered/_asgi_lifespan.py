"""The wrapped application's own lifespan, and the messages of a failed lifespan.

Used by :class:`tiered.asgi.LifespanMiddleware`, which starts the tiers
around the application's own lifespan and reports failures one line per
failed driver.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING

import anyio

from ._asgi_health import ASGIApp, Message, Receive, Scope
from ._exceptions import ConfigError, ShutdownError, StartupError

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["AppLifespan", "expect", "failure_message"]

log = logging.getLogger("tiered")


async def expect(receive: Receive, kind: str) -> None:
    message = await receive()
    if message.get("type") != kind:
        msg = (
            f"the ASGI server sent {message.get('type')!r} where the lifespan "
            f"protocol has {kind!r}"
        )
        raise RuntimeError(msg)


class AppLifespan:
    """The wrapped application's own lifespan, driven as a server drives it.

    The application speaks the lifespan protocol if it answers
    ``lifespan.startup`` with ``lifespan.startup.complete`` or ``.failed``.
    One that raises or returns instead (the ASGI spec's way of saying it does
    not), or that answers with a message of another protocol (it ignores the
    scope type), is served without a lifespan, as uvicorn's
    ``--lifespan auto`` serves it.
    """

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.app = app
        self.scope = scope
        self.to_app, self.app_inbox = anyio.create_memory_object_stream[Message](1)
        self.app_outbox, self.from_app = anyio.create_memory_object_stream[Message](1)
        self.asked = False  # the app called receive()
        self.active = False  # its startup completed, so it gets a shutdown
        self.error: Exception | None = None

    async def _main(self) -> None:
        with self.app_outbox:
            try:
                await self.app(self.scope, self._receive, self.app_outbox.send)
            except Exception as exc:
                self.error = exc

    async def _receive(self) -> Message:
        self.asked = True
        return await self.app_inbox.receive()

    async def _reply(self) -> Message | None:
        try:
            return await self.from_app.receive()
        except anyio.EndOfStream:
            return None

    async def startup(self, tg: TaskGroup) -> str | None:
        """Start the app's lifespan; return why it failed, or None."""
        tg.start_soon(self._main, name=f"lifespan of {self.app!r}")
        await self.to_app.send({"type": "lifespan.startup"})
        reply = await self._reply()
        kind = None if reply is None else reply.get("type")
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            return self._outcome(reply, "startup")
        self.stop_talking()  # an app still sending gets an error and ends
        # Silent (DEBUG) only when the app clearly never took part: it did not
        # even ask for a message.  One that asked and then failed may be a
        # lifespan that crashed without saying so: that is worth a WARNING.
        # (tests/test_asgi.py::test_middleware_serves_an_app_without_lifespan)
        how = (
            f"it answered lifespan.startup with {kind!r}"
            if reply is not None
            else f"it raised {_describe(self.error)}"
            if self.error is not None
            else "it returned"
        )
        log.log(
            logging.DEBUG if reply is None and not self.asked else logging.WARNING,
            "%r does not speak the ASGI lifespan protocol (%s); serving it "
            "without its own lifespan",
            self.app,
            how,
        )
        return None

    async def shutdown(self) -> str | None:
        """Stop the app's lifespan if it started; return why it failed, or None."""
        if not self.active:
            return None
        self.active = False
        await self.to_app.send({"type": "lifespan.shutdown"})
        return self._outcome(await self._reply(), "shutdown")

    def _outcome(self, reply: Message | None, stage: str) -> str | None:
        kind = None if reply is None else reply.get("type")
        if kind == f"lifespan.{stage}.complete":
            self.active = stage == "startup"
            return None
        if kind == f"lifespan.{stage}.failed":
            text = reply.get("message") if reply is not None else None
            return str(text) if text else f"the application's {stage} failed"
        what = f"sent {kind!r}" if reply is not None else "ended its lifespan"
        msg = (
            f"the application {what} where lifespan.{stage}.complete or "
            f"lifespan.{stage}.failed was due"
        )
        if self.error is not None:
            msg += "\n" + _traceback(self.error)
        return msg

    def stop_talking(self) -> None:
        # An app still waiting for a message, or sending one nobody reads,
        # gets an error now instead of keeping the task group open forever.
        self.to_app.close()
        self.from_app.close()

    def close(self) -> None:
        self.stop_talking()
        self.app_inbox.close()
        self.app_outbox.close()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip("\n")


def failure_message(exc: Exception) -> str:
    """One line per failed driver, then the traceback for whoever digs deeper.

    A StartupError or ShutdownError carries its failures as records (driver,
    tier, phase, error); a server logs this message as is, so the first
    lines say what failed and where.
    """
    if isinstance(exc, ConfigError):
        # a mistake in the declarations: one clear line, no traceback
        return f"tiered: {_describe(exc)}"
    if isinstance(exc, StartupError | ShutdownError):
        lines = [f"tiered: {exc.message}"] + [f"  {f.describe()}" for f in exc.failures]
    else:
        lines = [f"tiered: {_describe(exc)}"]
    return "\n".join(lines) + "\n\n" + _traceback(exc)
