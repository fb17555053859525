"""The virtualization-host demo: libvirt's restart race, and tiers ending it.

``tiered demo`` (or ``python -c "from tiered.demo import main; main()"``)
starts a small libvirt-like daemon with guests running as real processes,
restarts it many times and counts the guests its hypervisor drivers kill
because their storage pool was not active yet.  ``--mode flat`` puts every
driver in one tier, as libvirtd loaded them before 2014; ``--mode tiered``
uses the tiers of the RFC; ``--mode dependencies`` declares the same and
starts each driver as soon as what it requires is up.  ``--chaos`` then
makes the storage backend fail while the guests run, with the storage
driver supervised (``restart=``) and without.  See ``docs/libvirt.md``.

It imports nothing but anyio, the standard library and tiered.
"""

from __future__ import annotations

from ._guests import MARKER as MARKER
from ._guests import guest_pids as guest_pids
from ._main import main as main

__all__ = ["MARKER", "guest_pids", "main"]
