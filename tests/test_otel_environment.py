"""tiered.otel from the environment: what ``tiered run`` and ``serve()`` will do.

``trace_from_environment()`` sets a tracer provider up from the SDK's
``OTEL_*`` variables; ``tiered._otel_env.trace_if_configured()``, which
``serve()`` calls, does it only when one of them asks for tracing, and
needs no OpenTelemetry at all otherwise.  Most checks run in a real process
(a fresh environment, and the global provider that a process sets once);
the example prints the small daemon's spans on the console.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace as otel
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import tiered
import tiered.otel
from support.otel import Sleeper, Spans, provider, reset_globals, three_tiers

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["asyncio", "uvloop", "trio"]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter; ``provider(exporter)`` feeds it."""
    found = InMemorySpanExporter()
    yield found
    found.shutdown()


@pytest.fixture
def fresh_globals() -> Iterator[None]:
    """The global tracer provider unset, before and after (it can be set only once)."""
    reset_globals()
    yield
    reset_globals()


# -- from the environment ------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_* variable from the caller's environment leaks into the test."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    return monkeypatch


ENV_SCRIPT = """
import logging, sys
import anyio, tiered

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
runtime = tiered.Runtime("envd")


@runtime.driver(tier=0)
async def secrets(ctx):
    yield


run = runtime.run()
if sys.argv[2] == "trace_from_environment":
    import tiered.otel

    traced = tiered.otel.trace_from_environment(run)
else:  # what serve() calls, with or without OpenTelemetry installed
    from tiered._otel_env import trace_if_configured

    traced = trace_if_configured(run)
print("traced:", traced, flush=True)
loaded = {m.split(".")[1] for m, v in sys.modules.items() if v and "." in m
          and m.startswith("opentelemetry.")}
print("otel:", sorted(loaded), file=sys.stderr)


async def main():
    async with run:
        pass


backend = sys.argv[1]
options = {"use_uvloop": True} if backend == "uvloop" else {}
anyio.run(main, backend="trio" if backend == "trio" else "asyncio", backend_options=options)
"""


def run_script(
    code: str, backend: str, env: dict[str, str], how: str = "trace_from_environment"
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", code, backend, how],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**environ, **env},
    )


def json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter printed, one after the other."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    at = text.find("{")
    while at != -1:
        value, end = decoder.raw_decode(text, at)
        found.append(value)
        at = text.find("{", end)
    return found


def logged(out: subprocess.CompletedProcess[str]) -> tuple[list[str], list[str]]:
    """What the script wrote to stderr: its log lines, and the OpenTelemetry packages loaded."""
    *lines, loaded = out.stderr.splitlines()
    assert loaded.startswith("otel: "), out.stderr
    packages: list[str] = json.loads(loaded.removeprefix("otel: ").replace("'", '"'))
    return lines, packages


@pytest.mark.parametrize("backend", BACKENDS)
def test_console_exporter_from_the_environment(backend: str) -> None:
    """OTEL_TRACES_EXPORTER=console in a real process, as serve() will see it: spans printed at exit."""
    env = {"OTEL_TRACES_EXPORTER": "console"}
    out = run_script(ENV_SCRIPT, backend, env, how="trace_if_configured")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("traced: True\n")
    spans = json_objects(out.stdout)
    names = sorted(s["name"] for s in spans)
    assert names == [
        "initialize secrets",
        "shutdown envd",
        "startup envd",
        "stop secrets",
        "tier 0",
    ]
    services = {s["resource"]["attributes"]["service.name"] for s in spans}
    assert services == {"envd"}  # the runtime's name: OTEL_SERVICE_NAME is unset
    lines, packages = logged(out)
    assert lines == []
    assert "sdk" in packages


def test_nothing_is_imported_unless_tracing_is_configured() -> None:
    """Without the OTEL_* switches, serve()'s hook traces nothing and imports no OpenTelemetry."""
    out = run_script(ENV_SCRIPT, "asyncio", {}, how="trace_if_configured")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "traced: False\n"
    assert logged(out) == ([], [])


def test_serve_knows_the_same_switches() -> None:
    """serve() checks the switches itself, so that without them it imports nothing of tracing."""
    from tiered._otel_env import SWITCHES
    from tiered._serve import OTEL_SWITCHES

    assert OTEL_SWITCHES == SWITCHES


def test_without_opentelemetry_serve_warns_once() -> None:
    """Without even the OpenTelemetry API, serve()'s hook warns once, naming the variable, and goes on."""
    hide_api = "import sys\nsys.modules['opentelemetry'] = None\n"
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}
    out = run_script(hide_api + ENV_SCRIPT, "trio", env, how="trace_if_configured")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "traced: False\n"
    [warning], packages = logged(out)
    assert warning.startswith("WARNING:tiered:")
    assert (
        "(OTEL_EXPORTER_OTLP_ENDPOINT), but OpenTelemetry is not installed" in warning
    )
    assert packages == []


def test_the_environment_names_the_service() -> None:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the runtime's name."""
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "virtd-prod",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=lab",
    }
    out = run_script(ENV_SCRIPT, "asyncio", env)
    assert out.returncode == 0, out.stderr
    [resource] = {
        json.dumps(s["resource"]["attributes"], sort_keys=True)
        for s in json_objects(out.stdout)
    }
    attributes = json.loads(resource)
    assert attributes["service.name"] == "virtd-prod"
    assert attributes["deployment.environment"] == "lab"


def test_without_the_sdk_one_warning_and_no_tracing() -> None:
    """Without opentelemetry-sdk, trace_from_environment() warns once and the run goes on untraced."""
    hide_sdk = "import sys\nsys.modules['opentelemetry.sdk'] = None\n"
    out = run_script(
        hide_sdk + ENV_SCRIPT, "asyncio", {"OTEL_TRACES_EXPORTER": "console"}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "traced: False\n"
    [warning], packages = logged(out)
    assert warning.startswith("WARNING:tiered:")
    assert "the OpenTelemetry SDK is not installed" in warning
    assert "sdk" not in packages


def not_traced(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Run trace_from_environment on a fresh run; the warnings it logged (it must return False)."""
    runtime = tiered.Runtime("envd")
    runtime.add(Sleeper("secrets", 0))
    with caplog.at_level(logging.INFO, logger="tiered"):
        assert tiered.otel.trace_from_environment(runtime.run()) is False
    assert not isinstance(otel.get_tracer_provider(), TracerProvider)
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.usefixtures("fresh_globals")
@pytest.mark.parametrize(
    ("env", "warned"),
    [
        ({"OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_TRACES_EXPORTER": "console,none"}, None),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, None),
        ({"OTEL_TRACES_EXPORTER": "nosuch"}, "'nosuch', which is not installed"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"},
            "'otlp_proto_grpc', which is not installed "
            "(pip install opentelemetry-exporter-otlp-proto-grpc)",
        ),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            "'otlp_proto_http', which is not installed",
        ),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "carrier-pigeon",
            },
            "the OTLP protocol 'carrier-pigeon' is not one of grpc, http/protobuf",
        ),
    ],
)
def test_what_the_environment_cannot_trace(
    clean_environment: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    env: dict[str, str],
    warned: str | None,
) -> None:
    """No tracing when the environment says none or names what is not installed; a fault is one warning."""
    from importlib.metadata import entry_points

    for name in ("otlp_proto_grpc", "otlp_proto_http"):
        if entry_points(group="opentelemetry_traces_exporter", name=name):
            pytest.skip(f"the {name} exporter is installed here")
    for key, value in env.items():
        clean_environment.setenv(key, value)
    warnings = not_traced(caplog)
    if warned is None:
        assert warnings == []
    else:
        [warning] = warnings
        assert warned in warning


@pytest.mark.usefixtures("fresh_globals")
def test_the_provider_from_the_environment_is_global(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    """The provider made from the environment becomes the global one, for the drivers' own spans."""
    clean_environment.setenv("OTEL_TRACES_EXPORTER", "console")
    runtime = tiered.Runtime("envd")
    runtime.add(Sleeper("secrets", 0))
    assert tiered.otel.trace_from_environment(runtime.run()) is True
    made = otel.get_tracer_provider()
    try:
        assert isinstance(made, TracerProvider)
        assert made.resource.attributes["service.name"] == "envd"
    finally:
        if isinstance(made, TracerProvider):
            made.shutdown()


@pytest.mark.anyio
@pytest.mark.usefixtures("fresh_globals")
async def test_a_global_provider_set_already_is_used(
    clean_environment: pytest.MonkeyPatch,
    exporter: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A global provider set up before (opentelemetry-instrument, the program) gets the spans."""
    clean_environment.setenv("OTEL_TRACES_EXPORTER", "console")
    mine = provider(exporter)
    otel.set_tracer_provider(mine)
    run = three_tiers().run()
    assert tiered.otel.trace_from_environment(run) is True
    async with run:
        pass
    assert otel.get_tracer_provider() is mine
    assert Spans(exporter).one("startup virtd")
    assert capsys.readouterr().out == ""  # not a console exporter of its own


# -- imports, the example ----------------------------------------------------------------


def modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(out.stdout))


def test_only_tiered_otel_imports_opentelemetry() -> None:
    """import tiered loads no OpenTelemetry; import tiered.otel loads the API, not the SDK."""
    assert not {
        m for m in modules_after("import tiered") if m.startswith("opentelemetry")
    }
    loaded = modules_after("import tiered.otel")
    assert "opentelemetry.trace" in loaded
    assert not {m for m in loaded if m.startswith("opentelemetry.sdk")}


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_console_example_prints_the_small_daemon_as_spans(backend: str) -> None:
    """examples/otel_console.py prints the small daemon's start-up and shutdown, a line per span."""
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "otel_console.py"),
            "--backend",
            backend,
            "--oneline",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    names = [line[:22].strip() for line in lines]
    assert sorted(names) == sorted(
        ["startup small-virtd", "tier 0", "tier 1", "tier 2", "shutdown small-virtd"]
        + [f"initialize {d}" for d in ("secrets", "network", "storage", "qemu")]
        + [f"autostart {d}" for d in ("network", "storage", "qemu")]
        + [f"stop {d}" for d in ("secrets", "network", "storage", "qemu")]
    )
    traces = [line.split("trace ")[1].split()[0] for line in lines]
    startup = {t for t, n in zip(traces, names, strict=True) if not n.startswith("s")}
    assert len(startup) == 1  # the start-up is one trace
    assert traces[names.index("shutdown small-virtd")] not in startup
    assert names[-1] == "shutdown small-virtd"  # a root ends after its children
