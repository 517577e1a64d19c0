"""Python's cycle collector, paused while bulk work makes millions of small objects.

Reading and applying a catalog of 100,000 entities makes a few million dicts, lists and
strings that reference counting alone frees; the cycle collector, run every few hundred
allocations, would scan them again and again (an eighth of a large ingestion's time).
Pauses are counted, so two ingestions on two threads resume collection only when both
are done, and collection stays off if it was off before.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


class _Pauses:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.resume = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self.lock:
            if self.count == 0:
                self.resume = gc.isenabled()
                gc.disable()
            self.count += 1
        try:
            yield
        finally:
            with self.lock:
                self.count -= 1
                if self.count == 0 and self.resume:
                    gc.enable()


_pauses = _Pauses()


def cycle_collection_paused() -> contextlib.AbstractContextManager[None]:
    """Pause the cycle collector for the ``with`` block (reference counting still frees)."""
    return _pauses.paused()
