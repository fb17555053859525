"""Another version's ``src/``, for measuring two versions on one machine.

``ab.py`` imports each version in fresh interpreters through
``PYTHONPATH``; ``run.py --daemons-from REV`` does the same for the daemons
of workloads 5 and 6, while the benchmark itself runs the working tree's.
"""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def source_of(rev: str, into: Path) -> Path:
    """``src/`` of ``rev`` (``.``: the working tree's) under ``into``; its path."""
    if rev == ".":
        return ROOT / "src"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # 3.11.4 on
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - git archive of our own repository
            tar.extractall(into)
    return into / "src"
