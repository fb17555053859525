"""The hypervisor drivers, qemu and lxc: they reconnect to running guests.

In libvirt the QEMU driver, on start-up, reconnects to every guest that kept
running while libvirtd was down, one thread per guest, and kills a guest
whose disk it finds unusable.  That check is where the restart race of
docs/libvirt.md kills guests: in flat mode it can run before the storage
driver has activated the guest's pool.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import anyio

from ._guests import Domain, guest_process
from ._host import DELAYS, Host, HostDriver, process_argv, read_json

if TYPE_CHECKING:
    import tiered

    from ._drivers import Storage

__all__ = ["Hypervisor"]


class Hypervisor(HostDriver):
    """qemu or lxc: reconnects to the guests that kept running across the restart.

    As libvirt's QEMU driver does, initialize reads the pid files and starts
    one reconnect task per running guest (a thread per domain in libvirt);
    each connects to the guest's monitor, then checks the guest's disk: a
    guest whose pool is not active at that moment is killed.  autostart waits
    for the reconnects.
    """

    def __init__(self, host: Host, name: str) -> None:
        super().__init__(host, 2, requires=("storage", "network"))
        self.name = name
        self.domains: list[Domain] = []
        self.reconnected: list[str] = []
        self.killed: list[str] = []
        self._pending = 0
        self._done: anyio.Event | None = None

    async def initialize(self, ctx: tiered.Context) -> None:
        """Probe capabilities, read the domains and pid files, start reconnecting."""
        rng = self.host.rng(self.name)
        self.reconnected, self.killed = [], []
        self._pending = 0
        self._done = anyio.Event()
        await self.host.wait(rng, f"{self.name}.caps")
        self.domains = []
        async for path in anyio.Path(self.host.state / "domains").glob("*.json"):
            domain = Domain(**await read_json(path))  # type: ignore[arg-type]
            if domain.driver == self.name:
                self.domains.append(domain)
        self.domains.sort(key=lambda d: d.name)
        storage: Storage | None = None
        if self.host.declared:
            storage = ctx.get("storage")
        running = 0
        for domain in self.domains:
            pid = await self._running_pid(ctx, domain)
            if pid is None:
                continue
            running += 1
            delay = self.host.rng(f"{self.name}:{domain.name}").uniform(
                *DELAYS[f"{self.name}.reconnect"]
            )
            self._pending += 1
            ctx.start_soon(self._reconnect, ctx, storage, domain, pid, delay / 1000.0)
        if not self._pending:
            self._done.set()
        ctx.status(f"reconnecting to {running} running domain(s)")

    async def _running_pid(self, ctx: tiered.Context, domain: Domain) -> int | None:
        pid_file = anyio.Path(self.host.state / "run" / f"{domain.name}.pid")
        try:
            pid = int(await pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None  # shut off
        argv = await process_argv(pid)
        if not guest_process(argv, domain.name):
            ctx.logger.info("domain %r (pid %d) is not running", domain.name, pid)
            await pid_file.unlink(missing_ok=True)
            return None
        return pid

    async def _reconnect(
        self,
        ctx: tiered.Context,
        storage: Storage | None,
        domain: Domain,
        pid: int,
        delay: float,
    ) -> None:
        try:
            await anyio.sleep(delay)  # connect to its monitor socket
            if storage is not None:  # tiered: through the declared requirement
                active = storage.is_active(domain.pool)
            else:  # flat: through the state directory, behind storage's back
                active = await self.host.active_file(domain.pool).exists()
            if active:
                self.reconnected.append(domain.name)
                self.host.reconnected.append(domain.name)
                ctx.status(f"reconnected to {domain.name!r}")
                return
            ctx.logger.warning(
                "domain %r: its disk %s/%s is on pool %r, which is not active; "
                "killing it (pid %d, SIGKILL)",
                domain.name,
                domain.pool,
                domain.volume,
                domain.pool,
                pid,
            )
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await anyio.Path(self.host.state / "run" / f"{domain.name}.pid").unlink(
                missing_ok=True
            )
            self.killed.append(domain.name)
            self.host.killed.append((self.name, domain.name, domain.pool))
        finally:
            self._pending -= 1
            if self._pending == 0 and self._done is not None:
                self._done.set()

    async def autostart(self, ctx: tiered.Context) -> None:
        """Wait until every running guest is reconnected (or killed)."""
        assert self._done is not None
        await self._done.wait()
        ctx.status(
            f"{len(self.reconnected)} domain(s) running, {len(self.killed)} killed"
        )
