"""Running ``geopush serve`` as a process in tests and benchmarks: a free port, the command
line, waiting until it answers, and stopping it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.server.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(*args: str) -> list[str]:
    """``geopush serve`` with ``args``, run by the interpreter running the tests (so the
    server is this checkout's code, from ``ROOT``)."""
    return [sys.executable, "-m", "server.cli", "serve", *args]


def _output(proc: subprocess.Popen[Any], log: Path | None) -> str:
    if log is not None:
        return log.read_text(errors="replace")
    if proc.poll() is None:
        return "(still running)"
    out, err = proc.communicate()
    return f"stdout:\n{out}\nstderr:\n{err}"


async def wait_up(base: str, proc: subprocess.Popen[Any], *, path: str = "/healthz",
                  timeout_s: float = 30.0, log: Path | None = None) -> None:
    """Wait until ``GET {base}{path}`` answers 200. Fails at once, with the server's output
    (from ``log`` when it writes there, else its pipes), if ``proc`` exits; and after
    ``timeout_s`` seconds."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

        async def answers() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}:\n"
                                     f"{_output(proc, log)}")
            try:
                async with session.get(f"{base}{path}") as resp:
                    return resp.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False

        try:
            await eventually(answers, timeout_s)
        except AssertionError as exc:
            if proc.poll() is not None:
                raise
            raise AssertionError(f"the server did not answer {path} in {timeout_s} s:\n"
                                 f"{_output(proc, log)}") from exc


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM,
         timeout_s: float = 30.0) -> tuple[Any, Any]:
    """Send ``sig`` to a running server and wait for it to exit (killing it if it has not
    after ``timeout_s``); its piped (stdout, stderr), ``None`` for what is not piped."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
