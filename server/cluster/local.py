"""A local NATS JetStream cluster for development and tests: ``nodes`` ``nats-server``
processes on free ports of 127.0.0.1, each with its own config file and JetStream
directory under one temporary directory, routed to each other as one cluster.

Standard library only, so ``python3 dev.py cluster`` can use it without the virtual
environment. Tests start one per test and kill nodes with SIGKILL.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NATS_SERVER = "nats-server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Node:
    name: str
    client_port: int
    cluster_port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"


@dataclass
class LocalNats:
    """A running local cluster; :meth:`stop` (or the ``with`` block) ends it."""

    nodes: list[Node]
    root: Path
    binary: str = NATS_SERVER
    _keep: bool = field(default=False)

    @classmethod
    def start(cls, nodes: int = 3, *, binary: str | None = None,
              root: Path | None = None, timeout_s: float = 20.0) -> LocalNats:
        """Start ``nodes`` servers (one: no cluster block) and wait until each answers
        and JetStream has a meta leader (``nats-server`` prints it)."""
        found = binary or shutil.which(NATS_SERVER) or "/usr/sbin/nats-server"
        base = root or Path(tempfile.mkdtemp(prefix="geopush-nats-"))
        cluster = cls([Node(f"n{i}", _free_port(), _free_port(), base / f"n{i}")
                       for i in range(nodes)], base, found, _keep=root is not None)
        for node in cluster.nodes:
            cluster._write_config(node)
            cluster.restart(node)
        cluster.wait_ready(timeout_s)
        return cluster

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def _write_config(self, node: Node) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(f"nats-route://127.0.0.1:{n.cluster_port}" for n in self.nodes)
        cluster = "" if len(self.nodes) == 1 else (
            f"cluster {{\n  name: geopush\n  listen: 127.0.0.1:{node.cluster_port}\n"
            f"  routes: [{routes}]\n}}\n")
        (node.directory / "nats.conf").write_text(
            f"server_name: {node.name}\nlisten: 127.0.0.1:{node.client_port}\n"
            f"jetstream {{\n  store_dir: \"{node.directory / 'js'}\"\n"
            f"  max_memory_store: 256MB\n  max_file_store: 2GB\n}}\n{cluster}")

    def restart(self, node: Node) -> None:
        """(Re)start a node on its ports and its JetStream directory."""
        with (node.directory / "nats.log").open("ab") as log:
            # A session of its own: a Ctrl-C meant for the caller must not take the
            # cluster down before the processes that use it have shut down.
            node.proc = subprocess.Popen(
                [self.binary, "-c", str(node.directory / "nats.conf")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, node: Node) -> None:
        """SIGKILL one node (a crash: nothing flushed, nothing said to the others)."""
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(timeout=10)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            while not _answers(node.client_port):
                if node.proc is not None and node.proc.poll() is not None:
                    log = (node.directory / "nats.log").read_text(errors="replace")
                    raise RuntimeError(f"nats-server {node.name} exited:\n{log[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server {node.name} did not answer")
                time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()
        if not self._keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalNats:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
