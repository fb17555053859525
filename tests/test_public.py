"""The public surface: names, module metadata, and a core that imports only anyio."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import tiered


def test_all_names_are_exported_and_documented() -> None:
    """Every name in __all__ exists, says it is tiered.X, and has a docstring."""
    for name in tiered.__all__:
        obj = getattr(tiered, name)
        assert obj.__module__ == "tiered", name
        assert obj.__doc__, name


def test_no_public_name_is_missing_from_all() -> None:
    """Every public attribute of the package is listed in __all__."""
    public = {
        n
        for n in dir(tiered)
        if not n.startswith("_") and not isinstance(getattr(tiered, n), type(tiered))
    }
    assert public - {"annotations"} == set(tiered.__all__)


def test_error_hierarchy() -> None:
    """Each error sits on the nearest builtin, as docs/design.md says."""
    assert issubclass(tiered.ConfigError, tiered.TieredError)
    assert issubclass(tiered.ConfigError, ValueError)
    assert issubclass(tiered.DependencyError, LookupError)
    assert issubclass(tiered.DriverTimeout, TimeoutError)
    assert issubclass(tiered.UsageError, RuntimeError)
    assert issubclass(tiered.StartupError, ExceptionGroup)
    assert issubclass(tiered.ShutdownError, ExceptionGroup)
    assert repr(tiered.StartupError("x", [ValueError()])).startswith("StartupError(")


def test_core_imports_only_anyio() -> None:
    """Importing tiered pulls in anyio and the standard library, nothing else."""
    code = textwrap.dedent(
        """
        import sys
        before = set(sys.modules)
        import tiered
        new = {m.split(".")[0] for m in set(sys.modules) - before}
        std = set(sys.stdlib_module_names) | {"_distutils_hack"}
        print(sorted(new - std - {"tiered", "anyio", "sniffio", "idna", "typing_extensions", "exceptiongroup"}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert "trio" not in out.stdout


def test_skip_reason_is_always_a_str() -> None:
    """The report's ``reason`` is typed str, whatever a caller passed to Skip."""
    assert tiered.Skip("no GPU").reason == "no GPU"
    assert tiered.Skip(42).reason == "42"  # type: ignore[arg-type]
    assert tiered.Skip().reason == ""
