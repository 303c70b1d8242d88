"""Run one stage of the video pipeline in a thread, handing items on through a bounded queue.

Decoding, restoration and encoding then overlap (FFmpeg and torch release the GIL while they work),
and the bound keeps at most `size` decoded or restored frames in memory. An exception in the stage is
raised in the consumer, and a consumer that stops early stops the stage.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar('T')
_DONE = object()


def prefetch(items: Iterable[T], size: int = 8) -> Iterator[T]:
    """Iterate `items` in a background thread, at most `size` ahead of the caller."""
    q: queue.Queue = queue.Queue(maxsize=max(1, size))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as err:  # handed to the consumer, which raises it
            put((_DONE, err))
            return
        put((_DONE, None))

    thread = threading.Thread(target=work, daemon=True, name='gfpgan-video-stage')
    thread.start()
    try:
        while True:
            item, err = q.get()
            if item is _DONE:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
