#!/usr/bin/env python3
"""Developer entry point that needs nothing but Python 3.11+.

    python3 dev.py demo     # the main job on the embedded default (no database)
    python3 dev.py test     # ruff, mypy, import contracts and the whole pytest suite
    python3 dev.py bench    # the benchmarks (see BENCHMARKS.md)

Each command creates ``.venv`` on first use and installs the project with its dev
extras into it; the install is redone when ``pyproject.toml`` changes.

Services for the tests: PostgreSQL is taken from ``TEST_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). When nothing answers there and
``initdb``/``pg_ctl`` are on the machine, a throwaway cluster is started in a
temporary folder for the run and removed afterwards. With no PostgreSQL at all the
tests that need it are skipped and the run says so, unless ``REQUIRE_SERVICES=1``
(as CI sets), which makes a missing service an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def ensure_venv() -> None:
    """Create .venv and (re)install the project when pyproject.toml changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit("geopush needs Python 3.11 or newer")
    if not PY.exists():
        _say(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    marker = VENV / ".geopush-installed"
    if marker.exists() and marker.read_text() == digest:
        return
    _say("installing geopush and its dev dependencies (first run takes a minute)")
    pip = [str(PY), "-m", "pip", "--disable-pip-version-check", "-q"]
    if subprocess.call([*pip, "install", "--upgrade", "pip"], cwd=ROOT) != 0:
        sys.exit("pip upgrade failed")
    if subprocess.call([*pip, "install", "-e", ".[dev]"], cwd=ROOT) != 0:
        sys.exit("installing the project failed")
    marker.write_text(digest)


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres() -> Iterator[str | None]:
    """Yield a reachable PostgreSQL URL, a throwaway one, or None (tests then skip)."""
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_URL)
    parsed = urlparse(url)
    if _port_open(parsed.hostname or "127.0.0.1", parsed.port or 5432):
        _say(f"PostgreSQL: using {url}")
        yield url
        return
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        _say(f"PostgreSQL: nothing answers at {url} and initdb/pg_ctl are not installed")
        yield None
        return
    tmp = Path(tempfile.mkdtemp(prefix="geopush-pg-"))
    port = _free_port()
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # initdb refuses to run as root; run the throwaway cluster as `postgres`.
        shutil.chown(tmp, user="postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data = tmp / "data"
    _say(f"PostgreSQL: starting a throwaway cluster on port {port} in {tmp}")
    subprocess.check_call(
        [*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        stdout=subprocess.DEVNULL,
    )
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.check_call(
        [*prefix, pg_ctl, "-D", str(data), "-o", opts, "-w", "-l", str(tmp / "log"), "start"],
        stdout=subprocess.DEVNULL,
    )
    try:
        createdb = shutil.which("createdb") or "createdb"
        subprocess.check_call(
            [*prefix, createdb, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "test"]
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/test"
    finally:
        subprocess.call([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
                        stdout=subprocess.DEVNULL)
        time.sleep(0.2)
        shutil.rmtree(tmp, ignore_errors=True)


def cmd_test(extra: list[str]) -> int:
    ensure_venv()
    require = os.environ.get("REQUIRE_SERVICES") == "1"
    checks: list[tuple[str, list[str | Path]]] = [
        ("ruff", [BIN / "ruff", "check", "."]),
        ("mypy", [BIN / "mypy"]),
        ("import contracts", [BIN / "lint-imports"]),
    ]
    for name, cmd in checks:
        _say(f"running {name}")
        if _run(*cmd) != 0:
            _say(f"{name} failed")
            return 1
    mqtt = urlparse(os.environ.get("TEST_MQTT_URL", "mqtt://127.0.0.1:1883"))
    if _port_open(mqtt.hostname or "127.0.0.1", mqtt.port or 1883):
        _say(f"MQTT: using the broker at {mqtt.hostname}:{mqtt.port or 1883}")
    elif require:
        _say("REQUIRE_SERVICES=1 but no MQTT broker answers (TEST_MQTT_URL): failing")
        return 1
    else:
        _say("SKIPPING the MQTT channel tests: no broker answers at "
             f"{mqtt.hostname}:{mqtt.port or 1883} (start mosquitto or set TEST_MQTT_URL)")
    with postgres() as pg_url:
        env = dict(os.environ)
        if pg_url is None:
            if require:
                _say("REQUIRE_SERVICES=1 but no PostgreSQL is available: failing")
                return 1
            _say("SKIPPING every test marked needs_postgres: no PostgreSQL available")
            env.pop("TEST_DATABASE_URL", None)
            env["GEOPUSH_NO_POSTGRES"] = "1"
        else:
            env["TEST_DATABASE_URL"] = pg_url
        _say("running pytest")
        rc = _run(PY, "-m", "pytest", *extra, env=env)
    return rc


def cmd_demo(extra: list[str]) -> int:
    """The main job: the flagship scenario (a Saturday in Helsinki's malls) replayed
    through the engine, with its timeline, summary, map and plot."""
    ensure_venv()
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    geopush = BIN / "geopush"
    flagship = ROOT / "fixtures" / "scenarios" / "helsinki_saturday_mall.yaml"
    step: list[str | Path] = [geopush, "simulate", flagship, "--map", out / "flagship.html",
                              "--plot", out / "flagship.png"]
    _say("$ " + " ".join(str(s.relative_to(ROOT) if isinstance(s, Path) and
                               s.is_relative_to(ROOT) else s) for s in step))
    rc = _run(*step, *extra)
    if rc != 0:
        return rc
    _say(f"done: open {out / 'flagship.html'} for the map, {out / 'flagship.png'} for the "
         "timeline plot")
    _say(f"console: {geopush.relative_to(ROOT)} serve --scenario "
         f"{flagship.relative_to(ROOT)}, then open http://127.0.0.1:8080/console and sign "
         "in with the admin key it prints")
    return 0


def cmd_bench(extra: list[str]) -> int:
    ensure_venv()
    return _run(PY, ROOT / "tests" / "bench" / "run.py", *extra)


COMMANDS = {"demo": cmd_demo, "test": cmd_test, "bench": cmd_bench}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
