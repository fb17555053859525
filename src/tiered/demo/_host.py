"""What the demo's drivers share: the modes, the modelled delays, the host.

Every delay is drawn from a ``random.Random`` seeded with the demo's seed, the
restart's number and the driver's name: the same restart waits the same in
every mode, only the schedule differs.  ``anyio.sleep`` stands for what a real
daemon waits on (a keyring, udev, a Ceph monitor, a QEMU monitor socket).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import anyio

import tiered

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DELAYS", "MODES", "Host", "HostDriver", "Mode", "process_argv", "read_json"]

#: ``flat``: one tier, nothing declared (libvirtd before 2014); ``tiered``:
#: the RFC's tiers, every dependency declared, a barrier between tiers;
#: ``dependencies``: the same declarations, each driver as soon as what it
#: requires is up (``schedule="dependencies"``).
Mode = Literal["tiered", "flat", "dependencies"]
MODES: Final[tuple[Mode, ...]] = ("tiered", "flat", "dependencies")

#: Milliseconds, (low, high) of a uniform draw, for each thing a driver waits on.
#: Tuned so that flat mode kills a guest in about 40% of restarts (the seed's
#: figure), measured, not assumed: see docs/libvirt.md.
DELAYS: Final[dict[str, tuple[float, float]]] = {
    "secrets.keyring": (4.0, 24.0),  # unlock the keyring, then write the keys
    "network.bridge": (10.0, 30.0),  # create the bridge device
    "network.dnsmasq": (10.0, 30.0),  # start dnsmasq on it
    "nwfilter.compile": (5.0, 20.0),  # compile the filter rules
    "nodedev.udev": (15.0, 40.0),  # enumerate devices through udev
    # start the mediated devices (vGPU slices) defined to autostart, one
    # mdevctl call each: slow, and nothing in tiers 1 and 2 needs it, so only
    # the barrier makes them wait for it (docs/libvirt.md)
    "nodedev.mdev": (60.0, 140.0),
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
        mode: ``"tiered"``, ``"flat"`` or ``"dependencies"``.
        monitor: the loopback port of the (modelled) Ceph monitors, which the
            storage driver watches in the chaos run; None: no watch.
        restart: the number of the current start, part of every seed.
        killed: the guests killed in the current start: (driver, guest, pool).
        unkeyed: the pools storage could not activate for want of their key.
        reconnected: the guests reconnected in the current start.
    """

    state: Path
    seed: int
    mode: Mode
    monitor: int | None = None
    restart: str = "0"
    killed: list[tuple[str, str, str]] = field(default_factory=list)
    unkeyed: list[str] = field(default_factory=list)
    reconnected: list[str] = field(default_factory=list)

    @property
    def declared(self) -> bool:
        """Whether the drivers declare their requirements (every mode but flat)."""
        return self.mode != "flat"

    def begin(self, restart: str) -> None:
        """Get ready for a new start numbered ``restart``."""
        self.restart = restart
        self.killed.clear()
        self.unkeyed.clear()
        self.reconnected.clear()

    def rng(self, what: str) -> random.Random:
        """A generator for ``what`` in this restart, the same in every mode."""
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


async def read_json(path: anyio.Path) -> dict[str, object]:
    """The JSON object in ``path``."""
    data = json.loads(await path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


async def process_argv(pid: int) -> list[str] | None:
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


class HostDriver(tiered.Driver):
    """A driver of the demo host: knows the host, gets its tier from the mode.

    Flat mode puts every driver in tier 0 and declares nothing (tiered
    forbids a requirement inside a tier); the other modes declare the
    RFC's tiers and every requirement.
    """

    def __init__(
        self, host: Host, tiered_tier: int, requires: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.host = host
        self.tier = tiered_tier if host.declared else 0
        self.requires = requires if host.declared else ()
