"""A bounded pool of encode/decode workers with a queue, for the web server.

At most ``workers`` jobs run at once (threads: the codecs' native libraries and torch do their
work outside the GIL, and the loaded models are shared), at most ``queue`` more wait; a request
beyond that is refused at once (the server answers 503) instead of piling up. A job's events
flow to its HTTP response as they come (newline-delimited JSON); a job that outlives its
request's time-out, or whose client went away, stops at its next step.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cae_codec.errors import CaecError
from cae_codec.web.work import Check, Report, Stopped

log = logging.getLogger("caec.web")
Work = Callable[[Report, Check], None]
END = {"event": "end"}


def _malloc_trim() -> Callable[[], None]:
    """glibc's malloc_trim: a worker thread's arena keeps the pages of a job's images after they
    are freed (RSS stayed ~45 MiB above its resting level after a load test); giving them back
    after each job brings the server back to its resting size. Elsewhere: nothing to do."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is None:
        return lambda: None

    def run() -> None:
        trim(0)

    return run


trim_memory = _malloc_trim()


class Job:
    """One accepted request's work: its events, its deadline, whether its client left."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.loop = loop
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.deadline = time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self.gone = threading.Event()

    def report(self, event: dict[str, Any]) -> None:
        """From the worker thread: hand an event to the response."""
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)

    def check(self) -> None:
        if self.gone.is_set():
            raise Stopped("the request was cancelled")
        if time.monotonic() > self.deadline:
            raise Stopped(
                f"this took longer than the server's limit of {self.timeout_s:g} s: "
                "try a smaller image, fewer codecs or fewer rates"
            )


class Pool:
    def __init__(self, workers: int, queue: int, timeout_s: float) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("a pool needs at least one worker and a queue of zero or more")
        self.workers = workers
        self.capacity = workers + queue
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="caec-web")
        self.held = 0  # jobs admitted and not finished: touched on the event loop only
        self.refused = 0

    def admit(self) -> bool:
        """Take a place for a job, or False when every worker and queue place is taken."""
        if self.held >= self.capacity:
            self.refused += 1
            return False
        self.held += 1
        return True

    def release(self) -> None:
        self.held -= 1

    def start(self, work: Work) -> Job:
        """Run ``work`` on a worker (a place must have been admitted); the place is given back
        when the work has really ended, whatever became of the request."""
        loop = asyncio.get_running_loop()
        job = Job(loop, self.timeout_s)
        ahead = max(0, self.held - self.workers)
        if ahead:
            job.report({"event": "queued", "ahead": ahead})
        future = self._executor.submit(_run, job, work)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self.release))
        return job

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _run(job: Job, work: Work) -> None:
    """In a worker: the work, and every way it can end as one event (never a traceback to the client)."""
    try:
        job.check()  # it may have waited past its time, or been abandoned, in the queue
        job.report({"event": "started"})
        work(job.report, job.check)
    except (Stopped, CaecError) as e:
        job.report({"event": "error", "message": str(e)})
    except MemoryError:
        job.report({"event": "error", "message": "the server ran out of memory on this input"})
    except Exception as e:  # a bug, not a bad input: the log keeps the traceback, the page one line
        log.exception("job failed")
        job.report({"event": "error", "message": f"internal error ({type(e).__name__}); the server log has details"})
    finally:
        job.report(END)
        trim_memory()


async def ndjson(job: Job) -> AsyncIterator[bytes]:
    """The job's events as JSON lines until it ends; closing this early (the client left)
    tells the job to stop at its next step."""
    try:
        while True:
            event = await job.events.get()
            yield (json.dumps(event, separators=(",", ":")) + "\n").encode()
            if event is END:
                return
    finally:
        job.gone.set()
