"""Venue worker processes: the venue work that would hold the server's GIL.

Validating a 20,000-vertex outline, simplifying it and building a tenant's geofence
index take tens to hundreds of milliseconds of CPU, much of it in Python or in C code
that keeps the GIL. In a thread of the server, every other tenant's requests wait for
the GIL meanwhile (measured by ``tests/bench/bench_hostile.py``). :class:`VenueWorkers`
runs that work in a small pool of worker processes instead (``spawn`` start method: no
fork of a running event loop and its sockets), which have GILs of their own and a lower
CPU priority than the server (:data:`WORKER_NICE`). What
crosses over is pickled: request bodies as bytes, venues and fences with their
geometries as WKB, an index as its arrays.

With ``processes=0`` the same jobs run in threads of this process (tests, tools, and
a server that wants no child processes); the answers are the same.

A worker process that dies (killed, out of memory) breaks the pool: the job that was
running fails with :class:`VenueWorkersError`, and the next one starts a new pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from geo.fence import Fence
from geo.index import GeofenceIndex

log = logging.getLogger("geopush.venue_workers")

T = TypeVar("T")


class VenueWorkersError(Exception):
    """A worker process died during the job (the pool is started again for the next)."""


class VenueWorkers:
    """The venue worker pool of one server process. Async methods run in the event
    loop; :meth:`build_index` blocks its caller (a thread). Processes start on first
    use, so a server that writes no venue starts none."""

    def __init__(self, processes: int) -> None:
        if processes < 0:
            raise ValueError(f"processes must be >= 0, not {processes}")
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """``job(*args)`` in a worker process (or a thread with no processes)."""
        if self.processes == 0:
            return await asyncio.to_thread(job, *args)
        # Made and submitted to from a thread: the pool's semaphores, a submit's write to
        # a pipe and the processes' start are blocking calls the event loop must not make.
        pool = await asyncio.to_thread(self._executor)
        try:
            future = await asyncio.to_thread(pool.submit, job, *args)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            self._broken(pool)
            raise VenueWorkersError(str(exc)) from exc

    def build_index(self, fences: Sequence[Fence], halo_m: float) -> GeofenceIndex:
        """``GeofenceIndex.build(fences, halo_m=halo_m)`` in a worker process; blocks the
        calling thread (never call it from the event loop)."""
        if self.processes == 0:
            return GeofenceIndex.build(fences, halo_m=halo_m)
        pool = self._executor()
        try:
            return pool.submit(build_index, tuple(fences), halo_m).result()
        except BrokenProcessPool as exc:
            self._broken(pool)
            raise VenueWorkersError(str(exc)) from exc

    async def aclose(self) -> None:
        """Stop the processes; jobs not started are cancelled."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:  # called from threads: one pool, never two
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker, initargs=(os.getpid(),))
            return self._pool

    def _broken(self, pool: ProcessPoolExecutor) -> None:
        log.error("a venue worker process died; starting new ones for the next job")
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)


WORKER_NICE = 10
"""How much lower the workers' CPU priority is than the server's: on a busy machine a
tenant's venue work takes the CPU the server's requests leave (Linux gives a process of
nice 10 about a tenth of the share of one of nice 0), rather than half of it."""


PARENT_CHECK_S = 1.0
"""How often a worker checks that the server that started it still runs."""


def _start_worker(server_pid: int) -> None:
    """In each new worker: the lower priority, and a watch that ends the worker when the
    server is gone (a server killed with SIGKILL cannot stop its pool: its workers would
    wait for jobs forever)."""
    os.nice(WORKER_NICE)
    threading.Thread(target=_exit_with_server, args=(server_pid,), daemon=True,
                     name="geopush-venue-worker-watch").start()


def _exit_with_server(server_pid: int) -> None:
    while os.getppid() == server_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def build_index(fences: tuple[Fence, ...], halo_m: float) -> GeofenceIndex:
    """The job: a tenant's geofence index (pickled back whole, see ``GeofenceIndex``)."""
    return GeofenceIndex.build(fences, halo_m=halo_m)
