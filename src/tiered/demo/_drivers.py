"""The demo daemon's drivers, modelled on libvirtd's state drivers.

``tiered`` mode declares them as libvirt's tiered driver loading RFC (2014)
proposed, with every dependency declared:

- tier 0: secrets, network, nwfilter, nodedev, interface;
- tier 1: storage, which requires secrets (its rbd pool needs a CephX key);
- tier 2: qemu and lxc, which require storage (their guests' disks are on its
  pools) and network.

``flat`` mode is the world before the fix: every driver in tier 0, nothing
declared (tiered forbids a requirement inside a tier).  So the hypervisors
look at pool state through a hidden path, the ``pools/<name>.active`` files of
the state directory, and storage reads the key file the secrets driver
writes, if it is there yet.

Every delay is drawn from a ``random.Random`` seeded with the demo's seed, the
restart's number and the driver's name: the same restart waits the same in
both modes, only the tiers differ.  ``anyio.sleep`` stands for what a real
daemon waits on (a keyring, udev, a Ceph monitor, a QEMU monitor socket); the
rest is real file I/O in the state directory and a real loopback socket.
"""

from __future__ import annotations

import json
import os
import random
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import anyio
from anyio.abc import SocketAttribute

import tiered

from ._guests import POOLS, Domain, Pool, guest_process

if TYPE_CHECKING:
    from pathlib import Path

    from anyio.abc import SocketStream
    from anyio.streams.stapled import MultiListener

__all__ = ["DELAYS", "Host", "Hypervisor", "Mode", "build_runtime"]

Mode = Literal["tiered", "flat"]

#: Milliseconds, (low, high) of a uniform draw, for each thing a driver waits on.
#: Tuned so that flat mode kills a guest in about 40% of restarts (the seed's
#: figure), measured, not assumed: see docs/libvirt.md.
DELAYS: Final[dict[str, tuple[float, float]]] = {
    "secrets.keyring": (4.0, 24.0),  # unlock the keyring, then write the keys
    "network.bridge": (10.0, 30.0),  # create the bridge device
    "network.dnsmasq": (10.0, 30.0),  # start dnsmasq on it
    "nwfilter.compile": (5.0, 20.0),  # compile the filter rules
    "nodedev.udev": (15.0, 40.0),  # enumerate devices through udev
    "interface.netcf": (5.0, 25.0),  # ask netcf for the host interfaces
    "storage.load": (16.0, 36.0),  # parse the pool definitions
    "storage.dir": (5.0, 15.0),  # check and mount a directory pool
    "storage.rbd": (25.0, 60.0),  # connect to the Ceph monitors
    "storage.stop": (2.0, 8.0),  # unmount the pools
    "qemu.caps": (10.0, 30.0),  # probe `qemu --version` and its capabilities
    "lxc.caps": (5.0, 15.0),  # probe cgroups and namespaces
    "qemu.reconnect": (50.0, 150.0),  # connect to a QEMU monitor, QMP handshake
    "lxc.reconnect": (50.0, 150.0),  # attach to a container's controller
}


@dataclass
class Host:
    """What every driver of one runtime shares: the state directory and the dice.

    Attributes:
        state: the state directory (see ``_guests.prepare_state``).
        seed: the demo's seed.
        mode: ``"tiered"`` or ``"flat"``.
        restart: the number of the current start, part of every seed.
        killed: the guests killed in the current start: (driver, guest, pool).
        unkeyed: the pools storage could not activate for want of their key.
        reconnected: the guests reconnected in the current start.
    """

    state: Path
    seed: int
    mode: Mode
    restart: str = "0"
    killed: list[tuple[str, str, str]] = field(default_factory=list)
    unkeyed: list[str] = field(default_factory=list)
    reconnected: list[str] = field(default_factory=list)

    def begin(self, restart: str) -> None:
        """Get ready for a new start numbered ``restart``."""
        self.restart = restart
        self.killed.clear()
        self.unkeyed.clear()
        self.reconnected.clear()

    def rng(self, what: str) -> random.Random:
        """A generator for ``what`` in this restart, the same in both modes."""
        return random.Random(f"{self.seed}:{self.restart}:{what}")

    async def wait(self, rng: random.Random, what: str) -> float:
        """Sleep for the delay ``what`` (see :data:`DELAYS`); return seconds slept."""
        low, high = DELAYS[what]
        seconds = rng.uniform(low, high) / 1000.0
        await anyio.sleep(seconds)
        return seconds

    def key_file(self, usage: str) -> anyio.Path:
        """The runtime copy of a secret's value, written by the secrets driver."""
        return anyio.Path(self.state / "run" / "secrets" / f"{usage}.key")

    def active_file(self, pool: str) -> anyio.Path:
        """Exists while the pool is active: written by storage, read by hypervisors in flat mode."""
        return anyio.Path(self.state / "pools" / f"{pool}.active")


async def _read_json(path: anyio.Path) -> dict[str, object]:
    data = json.loads(await path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


async def _argv(pid: int) -> list[str] | None:
    """The command line of a live process ``pid``, None if there is none.

    Right after exec, /proc can show an empty command line for a moment: a
    process that exists and is no zombie is asked again, briefly.
    """
    for _ in range(50):
        try:
            raw = await anyio.Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = await anyio.Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        if raw:
            return raw.decode(errors="replace").rstrip("\0").split("\0")
        if stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"]):
            return None
        await anyio.sleep(0.002)
    return None


class _HostDriver(tiered.Driver):
    """A driver of the demo host: knows the host, gets its tier from the mode."""

    def __init__(
        self, host: Host, tiered_tier: int, requires: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.host = host
        flat = host.mode == "flat"
        self.tier = 0 if flat else tiered_tier
        self.requires = () if flat else requires


# -- tier 0 --------------------------------------------------------------------


class Secrets(_HostDriver):
    """Loads the secret definitions and keeps their values for other drivers."""

    name = "secrets"

    def __init__(self, host: Host) -> None:
        super().__init__(host, 0)
        self.values: dict[str, str] = {}

    async def initialize(self, ctx: tiered.Context) -> None:
        """Read every secret, unlock them, write the runtime key files."""
        rng = self.host.rng(self.name)
        self.values = {}
        async for path in anyio.Path(self.host.state / "secrets").glob("*.json"):
            data = await _read_json(path)
            self.values[str(data["usage"])] = str(data["value"])
        await self.host.wait(rng, "secrets.keyring")
        for usage, value in self.values.items():
            key = self.host.key_file(usage)
            await key.parent.mkdir(parents=True, exist_ok=True)
            await key.write_text(value, encoding="ascii")
        ctx.status(f"{len(self.values)} secret(s) loaded")

    def lookup(self, usage: str) -> str:
        """The value of the secret used as ``usage``."""
        return self.values[usage]

    async def stop(self, ctx: tiered.Context) -> None:
        """Wipe the runtime key files: keys stay on disk only while the daemon runs."""
        for usage in self.values:
            await self.host.key_file(usage).unlink(missing_ok=True)
        self.values = {}


class Network(_HostDriver):
    """A virtual network: a real listening socket on the loopback interface."""

    name = "network"

    def __init__(self, host: Host) -> None:
        super().__init__(host, 0)
        self.listener: MultiListener[SocketStream] | None = None
        self.port = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        """Read the network definition, create the bridge (a TCP listener)."""
        rng = self.host.rng(self.name)
        await _read_json(anyio.Path(self.host.state / "networks" / "default.json"))
        self.listener = await anyio.create_tcp_listener(
            local_host="127.0.0.1", local_port=0
        )
        self.port = self.listener.extra(SocketAttribute.local_port)
        await self.host.wait(rng, "network.bridge")
        ctx.status(f"bridge virbr0 on 127.0.0.1:{self.port}")

    async def autostart(self, ctx: tiered.Context) -> None:
        """Start 'dnsmasq' on the bridge and check it answers, over the socket."""
        assert self.listener is not None
        rng = self.host.rng(self.name)
        ctx.start_soon(self.listener.serve, self._answer)
        await self.host.wait(rng, "network.dnsmasq")
        async with await anyio.connect_tcp("127.0.0.1", self.port) as stream:
            await stream.send(b"ping")
            answer = await stream.receive()
        ctx.status(f"network 'default' active, dnsmasq answered {answer.decode()!r}")

    @staticmethod
    async def _answer(stream: SocketStream) -> None:
        async with stream:
            if await stream.receive() == b"ping":
                await stream.send(b"pong")

    async def stop(self, ctx: tiered.Context) -> None:
        """Close the bridge."""
        if self.listener is not None:
            await self.listener.aclose()
            self.listener = None


class NWFilter(_HostDriver):
    """Network filters: compiles the rules of its definitions."""

    name = "nwfilter"

    def __init__(self, host: Host) -> None:
        super().__init__(host, 0)
        self.rules = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        """Read and compile the filter rules."""
        rng = self.host.rng(self.name)
        self.rules = 0
        async for path in anyio.Path(self.host.state / "nwfilter").glob("*.json"):
            await _read_json(path)
            self.rules += 1
        await self.host.wait(rng, "nwfilter.compile")
        ctx.status(f"{self.rules} filter(s) compiled")


class NodeDev(_HostDriver):
    """Host devices, enumerated through udev (here: /sys/class/net, if present)."""

    name = "nodedev"

    def __init__(self, host: Host) -> None:
        super().__init__(host, 0)
        self.devices = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        """Enumerate the host's devices."""
        rng = self.host.rng(self.name)
        self.devices = 0
        net = anyio.Path("/sys/class/net")
        if await net.is_dir():
            async for _ in net.iterdir():
                self.devices += 1
        await self.host.wait(rng, "nodedev.udev")
        ctx.status(f"{self.devices} network device(s) found")


class Interface(_HostDriver):
    """Host network interfaces, as netcf sees them."""

    name = "interface"

    def __init__(self, host: Host) -> None:
        super().__init__(host, 0)

    async def initialize(self, ctx: tiered.Context) -> None:
        """Ask netcf (a sleep) for the interfaces."""
        await self.host.wait(self.host.rng(self.name), "interface.netcf")
        ctx.status("netcf ready")


# -- tier 1 --------------------------------------------------------------------


class Storage(_HostDriver):
    """Storage pools: a directory pool needs nothing, an rbd pool a CephX key.

    Pool state lives on disk: ``pools/<name>.active`` exists while the pool is
    active.  A restarted daemon begins with every pool inactive; autostart
    activates them one after the other; stop deactivates them.
    """

    name = "storage"

    def __init__(self, host: Host) -> None:
        super().__init__(host, 1, requires=("secrets",))
        self.pools: list[Pool] = []
        self.keys: dict[str, str | None] = {}
        self.active: set[str] = set()

    async def initialize(self, ctx: tiered.Context) -> None:
        """Read the pool definitions, mark every pool inactive, fetch the keys."""
        rng = self.host.rng(self.name)
        self.active = set()
        self.keys = {}
        for pool in POOLS:
            await self.host.active_file(pool.name).unlink(missing_ok=True)
        self.pools = []
        for pool in POOLS:
            data = await _read_json(
                anyio.Path(self.host.state / "pools" / f"{pool.name}.json")
            )
            self.pools.append(Pool(**data))  # type: ignore[arg-type]
        await self.host.wait(rng, "storage.load")
        for pool in self.pools:
            if pool.secret is not None:
                self.keys[pool.name] = await self._key(ctx, pool, pool.secret)
        ctx.status(f"{len(self.pools)} pools defined, all inactive")

    async def _key(self, ctx: tiered.Context, pool: Pool, usage: str) -> str | None:
        if self.host.mode == "tiered":
            # declared: storage requires secrets, a lower tier, so it is up
            secrets: Secrets = ctx.get("secrets")
            return secrets.lookup(usage)
        # flat: no requirement possible inside one tier, so read the file the
        # secrets driver writes, and hope it has written it already
        try:
            return await self.host.key_file(usage).read_text(encoding="ascii")
        except FileNotFoundError:
            ctx.logger.error(
                "pool %r: CephX key %r not found (the secrets driver is not up "
                "yet); the pool will not be activated",
                pool.name,
                usage,
            )
            return None

    async def autostart(self, ctx: tiered.Context) -> None:
        """Activate the pools, one after the other."""
        rng = self.host.rng(self.name)
        for pool in self.pools:
            await self.host.wait(rng, f"storage.{pool.type}")
            if pool.secret is not None and self.keys.get(pool.name) is None:
                ctx.logger.error(
                    "failed to autostart pool %r: no CephX key for %r",
                    pool.name,
                    pool.secret,
                )
                self.host.unkeyed.append(pool.name)
                continue
            await self.host.active_file(pool.name).write_text("active\n")
            self.active.add(pool.name)
            ctx.status(f"pool {pool.name!r} ({pool.type}) active")

    def is_active(self, pool: str) -> bool:
        """Whether the pool ``pool`` is active now."""
        return pool in self.active

    async def stop(self, ctx: tiered.Context) -> None:
        """Deactivate every pool."""
        await self.host.wait(self.host.rng(self.name), "storage.stop")
        for pool in POOLS:
            await self.host.active_file(pool.name).unlink(missing_ok=True)
        self.active = set()


# -- tier 2 --------------------------------------------------------------------


class Hypervisor(_HostDriver):
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
        self._done = anyio.Event()
        await self.host.wait(rng, f"{self.name}.caps")
        self.domains = []
        async for path in anyio.Path(self.host.state / "domains").glob("*.json"):
            domain = Domain(**await _read_json(path))  # type: ignore[arg-type]
            if domain.driver == self.name:
                self.domains.append(domain)
        self.domains.sort(key=lambda d: d.name)
        storage: Storage | None = None
        if self.host.mode == "tiered":
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
        argv = await _argv(pid)
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


def build_runtime(host: Host) -> tiered.Runtime:
    """The demo daemon: eight drivers, in tiers or flat, as ``host.mode`` says."""
    name = "virtd" if host.mode == "tiered" else "virtd-flat"
    runtime = tiered.Runtime(name, start_timeout=10.0, stop_timeout=5.0)
    for driver in (
        Secrets(host),
        Network(host),
        NWFilter(host),
        NodeDev(host),
        Interface(host),
        Storage(host),
        Hypervisor(host, "qemu"),
        Hypervisor(host, "lxc"),
    ):
        runtime.add(driver)
    return runtime
