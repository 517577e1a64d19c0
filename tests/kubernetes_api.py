"""A fake Kubernetes API server for the tests of the Kubernetes training backend and
serving runtime: no cluster runs on this machine.

It is kmock's ``KubernetesEmulator``, an in-memory API server on a loopback port that stores
what is created, patched and deleted, and runs no controllers. kmock's pytest plugin needs
pytest-asyncio, which Paved does not use: the emulator runs in a thread with its own event
loop instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import kmock


class FakeApiServer:
    """kmock's KubernetesEmulator served on a loopback port by a thread's own event loop."""

    def __init__(self, resources: Iterable[str]) -> None:
        self.emulator = kmock.KubernetesEmulator()
        # The emulator lists only resources it knows (a 404 otherwise): the ones a real
        # API server (with KServe installed, for serving) would know.
        for known in resources:
            self.emulator.resources[known] = kmock.ResourceInfo(namespaced=True)
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.emulator, kmock.Server(self.emulator) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        assert self._ready.wait(5), "the fake API server did not start"
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    def requests(self, *criteria: Any) -> list[kmock.Request]:
        """The requests the server received that match ``criteria`` (kmock's filters)."""
        return list(self.emulator[criteria])

    def names(self, resource: kmock.resource) -> set[tuple[str | None, str]]:
        """(namespace, name) of the objects of ``resource`` that exist (not deleted)."""
        return {
            (namespace, name)
            for (kind, namespace, name), obj in self.emulator.objects.items()
            if kind == resource and not obj.deleted
        }
