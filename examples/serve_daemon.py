"""Serve the small-virtd example as a daemon, until SIGTERM or SIGINT.

The entry point a systemd unit starts (``docs/tutorial.md`` ends with it)::

    python examples/serve_daemon.py --backend trio

``tiered.serve()`` starts every tier, tells systemd ``READY=1`` when they are
up (when ``NOTIFY_SOCKET`` is set), reloads on SIGHUP, stops in reverse tier
order on SIGTERM or SIGINT, and returns the exit status: 0 after a clean stop,
1 when start-up failed.  ``tiered run small_daemon:runtime`` does the same
without a file of your own.
"""

from __future__ import annotations

import argparse
import logging

from small_daemon import runtime

import tiered


def main() -> int:
    """Serve the runtime of ``small_daemon.py``; return the exit status."""
    parser = argparse.ArgumentParser(description="Serve small-virtd.")
    parser.add_argument(
        "--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return tiered.serve(runtime, backend=args.backend)


if __name__ == "__main__":
    raise SystemExit(main())
