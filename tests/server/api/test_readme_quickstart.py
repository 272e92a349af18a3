"""The README's HTTP quickstart, run as a newcomer runs it: its server line starts a real
``geopush serve``, and its shell lines are fed one by one to one bash session, as
pasted. Only the address changes: the server gets a free port (``GEOPUSH_PORT``, which
the README's line leaves to the environment) and the ``GEOPUSH=`` line points there.

A person pastes the next line after reading the last answer; the test stands for that
pause by waiting, before each line, until the server's outbox is empty (the
``geopush_outbox_depth`` gauge of ``/metrics``): the work the previous line started is
done. So the README stays true: if a line stops working, this test fails on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import selectors
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server.serve import ROOT, free_port, stop, wait_up
from tests.server.waiting import eventually

README = ROOT / "README.md"
README_ADDRESS = "http://127.0.0.1:8080"
LINE_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Quickstart:
    server: str
    """The line that starts the server."""
    lines: list[str]
    """The shell lines to paste, in order."""


def read_quickstart(text: str) -> Quickstart:
    """The ``sh`` blocks of the README's "HTTP quickstart" section: the first starts the
    server, the others are pasted in a second terminal."""
    section = text.split("\n## HTTP quickstart\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.M | re.S)
    assert len(blocks) >= 2, "the quickstart has a server block and client blocks"
    server = [line for line in blocks[0].splitlines() if line.strip()]
    assert len(server) == 1, server
    lines = [line for block in blocks[1:] for line in block.splitlines() if line.strip()]
    return Quickstart(server[0], lines)


class Terminal:
    """One bash session fed a line at a time; each line's output (stdout and stderr)
    and exit status come back separately."""

    def __init__(self, env: dict[str, str]) -> None:
        self._proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout, selectors.EVENT_READ)
        self._count = 0

    def run(self, line: str) -> tuple[int, str]:
        self._count += 1
        marker = f"__quickstart_line_{self._count}_done__"
        self._stdin.write(f"{line}\nprintf '\\n{marker} %s\\n' \"$?\"\n".encode())
        self._stdin.flush()
        found = re.compile(rf"\n?{marker} (\d+)\n".encode())
        out = b""
        deadline = time.monotonic() + LINE_TIMEOUT_S
        while (match := found.search(out)) is None:
            left = deadline - time.monotonic()
            assert left > 0, f"line did not finish in {LINE_TIMEOUT_S} s: {line}\n{out!r}"
            if self._selector.select(timeout=left):
                chunk = os.read(self._stdout.fileno(), 65536)
                assert chunk, f"bash ended during: {line}\n{out!r}"
                out += chunk
        return int(match.group(1)), out[:match.start()].decode()

    def close(self) -> None:
        self._selector.close()
        self._stdin.close()
        try:
            self._proc.wait(timeout=10)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._stdout.close()


def _clean_env() -> dict[str, str]:
    """This environment without the service's own settings: the README's server runs
    on its defaults (the embedded store), whatever the test run has set."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("GEOPUSH") and k != "DATABASE_URL"}


def _outbox_depth(base: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    match = re.search(r"^geopush_outbox_depth (\S+)$", text, flags=re.M)
    assert match is not None, "the outbox depth gauge is missing from /metrics"
    return float(match.group(1))


def _settled(base: str) -> None:
    """Wait until the server has sent what the lines so far put in its outbox."""
    async def empty() -> bool:
        return await asyncio.to_thread(_outbox_depth, base) == 0

    asyncio.run(eventually(empty, LINE_TIMEOUT_S))


def _get(base: str, path: str, header: str) -> object:
    name, value = header.split(": ", 1)
    request = urllib.request.Request(f"{base}{path}", headers={name: value})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def server() -> Iterator[str]:
    """The README's server line, on a free port; its base URL."""
    line = read_quickstart(README.read_text(encoding="utf-8")).server
    assert line.startswith(".venv/bin/geopush serve"), line
    # The geopush of the interpreter running the tests: .venv/bin/geopush itself when the
    # suite runs through dev.py, as the README assumes.
    program = shlex.quote(str(Path(sys.executable).parent / "geopush"))
    port = free_port()
    proc = subprocess.Popen(
        ["bash", "-c", "exec " + line.replace(".venv/bin/geopush", program, 1)], cwd=ROOT,
        env={**_clean_env(), "GEOPUSH_PORT": str(port)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_up(base, proc))
        yield base
    finally:
        stop(proc, signal.SIGTERM)
    assert proc.returncode == 0


def test_the_readme_quickstart_ends_with_the_offer_in_the_inbox_and_its_click_counted(
    server: str,
) -> None:
    quickstart = read_quickstart(README.read_text(encoding="utf-8"))
    lines = quickstart.lines
    [address_line] = [i for i, line in enumerate(lines) if line.startswith("GEOPUSH=")]
    assert lines[address_line] == f"GEOPUSH={README_ADDRESS}"
    lines[address_line] = f"GEOPUSH={server}"

    terminal = Terminal(_clean_env())
    try:
        outputs: list[str] = []
        for line in lines:
            _settled(server)
            status, output = terminal.run(line)
            assert status == 0, (line, output)
            assert '"error"' not in output and "Traceback" not in output, (line, output)
            outputs.append(output)
        _, manager = terminal.run('printf %s "$MANAGER"')
        _, delivery = terminal.run('printf %s "$DELIVERY"')
    finally:
        terminal.close()

    def answer(fragment: str) -> object:
        """What the line containing ``fragment`` printed, as JSON."""
        [i] = [i for i, line in enumerate(lines)
               if fragment in line and not line.startswith(("DELIVERY=", "MANAGER=", "SDK="))]
        return json.loads(outputs[i])

    assert answer("/v1/venues/import") == {
        "features": 74, "valid": 74, "rejected": 0, "repaired": 0, "errors": 0,
        "warnings": 0, "by_kind": {"mall": 5, "transit_station": 3, "store": 16,
                                   "campus": 6, "other": 44}, "strict_rejected": False}
    assert outputs[next(i for i, line in enumerate(lines)
                        if "/v1/venues/osm%3Away%2F289767497" in line)].strip() == "Forum"
    events = answer("/v1/pings")
    assert isinstance(events, list)
    [event] = events
    assert (event["kind"], event["venue_id"], event["user_id"]) == (
        "enter", "osm:way/289767497", "anna")
    inbox = answer("/inbox")
    assert isinstance(inbox, list)
    [message] = inbox
    assert message["title"] == "Welcome to Forum"
    assert message["campaign_id"] == "forum-welcome" and message["delivery_id"] == delivery
    assert answer("/feedback") == ["clicked"]
    assert answer("/stats") == {"clicked": 1}

    # The server agrees with what the terminal showed.
    inbox = _get(server, "/v1/users/anna/inbox", manager)
    assert isinstance(inbox, dict)
    [stored] = inbox["messages"]
    assert stored["delivery_id"] == delivery and stored["feedback"] == ["clicked"]
    stats = _get(server, "/v1/campaigns/forum-welcome/stats", manager)
    assert isinstance(stats, dict)
    assert stats["sends"] == 1 and stats["ctr"]["successes"] == 1
    assert stats["decisions"] == {"sent": {"sent": 1}}


def test_the_quickstart_reader_keeps_every_line_of_the_client_blocks() -> None:
    text = ("intro\n## HTTP quickstart\n\n```sh\nserve --admin-key k\n```\n\nsay\n\n"
            "```sh\nA=1\n\nB=2\n```\nmore\n```sh\nC=3\n```\n## Commands\n```sh\nD=4\n```\n")
    assert read_quickstart(text) == Quickstart("serve --admin-key k", ["A=1", "B=2", "C=3"])
