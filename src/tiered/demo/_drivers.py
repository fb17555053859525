"""The demo daemon's drivers, modelled on libvirtd's state drivers.

``tiered`` mode declares them as libvirt's tiered driver loading RFC (2014)
proposed, with every dependency declared:

- tier 0: secrets, network, nwfilter, nodedev, interface;
- tier 1: storage, which requires secrets (its rbd pool needs a CephX key);
- tier 2: qemu and lxc, which require storage (their guests' disks are on its
  pools) and network (``_hypervisor``).

``dependencies`` mode declares the same, and runs with
``schedule="dependencies"``: no barrier between tiers, each driver begins as
soon as what it requires is up, so storage need not wait for nodedev.

``flat`` mode is the world before the fix: every driver in tier 0, nothing
declared (tiered forbids a requirement inside a tier).  So the hypervisors
look at pool state through a hidden path, the ``pools/<name>.active`` files of
the state directory, and storage reads the key file the secrets driver
writes, if it is there yet.

The delays are modelled (``_host.DELAYS``); the rest is real file I/O in the
state directory and real loopback sockets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.abc import SocketAttribute

import tiered

from ._guests import POOLS, Pool
from ._host import Host, HostDriver, read_json
from ._hypervisor import Hypervisor

if TYPE_CHECKING:
    from anyio.abc import SocketStream
    from anyio.streams.stapled import MultiListener

__all__ = ["Hypervisor", "Storage", "build_runtime"]

# -- tier 0 --------------------------------------------------------------------


class Secrets(HostDriver):
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
            data = await read_json(path)
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


class Network(HostDriver):
    """A virtual network: a real listening socket on the loopback interface."""

    name = "network"

    def __init__(self, host: Host) -> None:
        super().__init__(host, 0)
        self.listener: MultiListener[SocketStream] | None = None
        self.port = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        """Read the network definition, create the bridge (a TCP listener)."""
        rng = self.host.rng(self.name)
        await read_json(anyio.Path(self.host.state / "networks" / "default.json"))
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


class NWFilter(HostDriver):
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
            await read_json(path)
            self.rules += 1
        await self.host.wait(rng, "nwfilter.compile")
        ctx.status(f"{self.rules} filter(s) compiled")


class NodeDev(HostDriver):
    """Host devices, enumerated through udev (here: /sys/class/net, if present).

    autostart starts the mediated devices defined to autostart, as libvirt's
    nodedev driver does through mdevctl: the slowest step of tier 0 here.
    """

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

    async def autostart(self, ctx: tiered.Context) -> None:
        """Start the mediated devices defined to autostart (mdevctl, a sleep)."""
        await self.host.wait(self.host.rng("nodedev.mdev"), "nodedev.mdev")
        ctx.status("mediated devices started")


class Interface(HostDriver):
    """Host network interfaces, as netcf sees them."""

    name = "interface"

    def __init__(self, host: Host) -> None:
        super().__init__(host, 0)

    async def initialize(self, ctx: tiered.Context) -> None:
        """Ask netcf (a sleep) for the interfaces."""
        await self.host.wait(self.host.rng(self.name), "interface.netcf")
        ctx.status("netcf ready")


# -- tier 1 --------------------------------------------------------------------


class Storage(HostDriver):
    """Storage pools: a directory pool needs nothing, an rbd pool a CephX key.

    Pool state lives on disk: ``pools/<name>.active`` exists while the pool is
    active.  A restarted daemon begins with every pool inactive; autostart
    activates them one after the other; stop deactivates them.
    """

    name = "storage"

    def __init__(self, host: Host, restart: tiered.Restart | None = None) -> None:
        super().__init__(host, 1, requires=("secrets",))
        self.restart = restart
        self.pools: list[Pool] = []
        self.keys: dict[str, str | None] = {}
        self.active: set[str] = set()
        self.monitors: list[SocketStream] = []

    async def initialize(self, ctx: tiered.Context) -> None:
        """Read the pool definitions, mark every pool inactive, fetch the keys."""
        rng = self.host.rng(self.name)
        self.active = set()
        self.keys = {}
        for pool in POOLS:
            await self.host.active_file(pool.name).unlink(missing_ok=True)
        self.pools = []
        for pool in POOLS:
            data = await read_json(
                anyio.Path(self.host.state / "pools" / f"{pool.name}.json")
            )
            self.pools.append(Pool(**data))  # type: ignore[arg-type]
        await self.host.wait(rng, "storage.load")
        for pool in self.pools:
            if pool.secret is not None:
                self.keys[pool.name] = await self._key(ctx, pool, pool.secret)
        ctx.status(f"{len(self.pools)} pools defined, all inactive")

    async def _key(self, ctx: tiered.Context, pool: Pool, usage: str) -> str | None:
        if self.host.declared:
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
            if pool.type == "rbd" and self.host.monitor is not None:
                await self._watch_monitors(ctx, pool, self.host.monitor)
            await self.host.active_file(pool.name).write_text("active\n")
            self.active.add(pool.name)
            ctx.status(f"pool {pool.name!r} ({pool.type}) active")

    async def _watch_monitors(self, ctx: tiered.Context, pool: Pool, port: int) -> None:
        """Connect to the Ceph monitors, and watch that connection while the pool runs.

        As librados does: a pool whose monitor session is lost is unusable.
        The watch is a background task: when it raises, the storage driver
        has failed after start-up, and its ``restart`` policy decides.
        """
        stream = await anyio.connect_tcp("127.0.0.1", port)
        self.monitors.append(stream)
        greeting = await stream.receive()
        ctx.status(f"pool {pool.name!r}: Ceph monitors say {greeting.decode().strip()}")
        ctx.start_soon(self._watch, ctx, pool, stream)

    async def _watch(
        self, ctx: tiered.Context, pool: Pool, stream: SocketStream
    ) -> None:
        try:
            while True:
                await stream.receive()  # health updates; none is needed here
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
        # the backend is gone: the pool is no longer usable
        self.active.discard(pool.name)
        await self.host.active_file(pool.name).unlink(missing_ok=True)
        msg = f"pool {pool.name!r}: lost the connection to the Ceph monitors"
        ctx.logger.error("%s; the pool is inactive", msg)
        raise ConnectionError(msg)

    def is_active(self, pool: str) -> bool:
        """Whether the pool ``pool`` is active now."""
        return pool in self.active

    async def stop(self, ctx: tiered.Context) -> None:
        """Close the monitor sessions and deactivate every pool."""
        for stream in self.monitors:
            await stream.aclose()
        self.monitors = []
        await self.host.wait(self.host.rng(self.name), "storage.stop")
        for pool in POOLS:
            await self.host.active_file(pool.name).unlink(missing_ok=True)
        self.active = set()


def build_runtime(
    host: Host, *, restart: tiered.Restart | None = None
) -> tiered.Runtime:
    """The demo daemon: eight drivers, as ``host.mode`` says.

    ``restart`` is the storage driver's restart policy (the chaos run's
    supervision); the other drivers have none.
    """
    name = "virtd" if host.declared else "virtd-flat"
    schedule = "dependencies" if host.mode == "dependencies" else "tiers"
    runtime = tiered.Runtime(
        name, start_timeout=10.0, stop_timeout=5.0, schedule=schedule
    )
    for driver in (
        Secrets(host),
        Network(host),
        NWFilter(host),
        NodeDev(host),
        Interface(host),
        Storage(host, restart),
        Hypervisor(host, "qemu"),
        Hypervisor(host, "lxc"),
    ):
        runtime.add(driver)
    return runtime
