"""Pausing the cycle collector for bulk work, from several threads at once."""

from __future__ import annotations

import gc
import threading

from portal.memory import cycle_collection_paused


def test_collection_resumes_only_when_the_last_pause_ends() -> None:
    assert gc.isenabled()
    first, second = cycle_collection_paused(), cycle_collection_paused()
    first.__enter__()
    second.__enter__()
    assert not gc.isenabled()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_collection_off_before_stays_off() -> None:
    gc.disable()
    try:
        with cycle_collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_pauses_from_many_threads_leave_collection_on() -> None:
    def pause() -> None:
        for _ in range(200):
            with cycle_collection_paused():
                pass

    threads = [threading.Thread(target=pause) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert gc.isenabled()
