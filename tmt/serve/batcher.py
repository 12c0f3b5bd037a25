"""One model, many requests: a worker thread that takes queued requests and translates those
that share a direction and decoding options as one batch.

Each request's input is prepared (decoded and tokenized) on its own, so a bad file fails only
its own request; the prepared inputs of a group then go through the translator together.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from tmt.errors import TmtError
from tmt.modality import Modality
from tmt.translator.generate import DecodingOptions

log = logging.getLogger(__name__)


class Busy(TmtError):
    """The queue is full: the client should retry later."""


@dataclass
class Job:
    source: Modality
    target: Modality
    raw: Any
    options: DecodingOptions
    future: Future = field(default_factory=Future)

    @property
    def key(self) -> tuple[Modality, Modality, DecodingOptions]:
        return self.source, self.target, self.options


class Batcher:
    """Queues requests for ``bundle`` and runs them on one worker thread.

    The worker takes the first waiting request, waits up to ``window`` seconds for more (never
    beyond ``max_batch``), and translates each group of the same direction and options as one
    batch. ``max_batch=1`` runs requests one at a time. At most ``max_queue`` requests wait;
    beyond that :meth:`submit` raises :class:`Busy`.
    """

    def __init__(self, bundle: Any, *, max_batch: int = 8, window: float = 0.01,
                 max_queue: int = 64) -> None:
        if max_batch < 1 or max_queue < 1 or window < 0:
            raise TmtError("max_batch and max_queue must be at least 1, window not negative")
        self.bundle = bundle
        self.max_batch = max_batch
        self.window = window
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self.batches: list[int] = []
        """Sizes of the batches run so far (for tests and the load benchmark)."""
        self._thread = threading.Thread(target=self._run, name="tmt-batcher", daemon=True)
        self._thread.start()

    def submit(self, source: Modality, target: Modality, raw: Any,
               options: DecodingOptions) -> Future:
        """Queue one request; its future holds a :class:`~tmt.bundle.Translation` or the error."""
        job = Job(source, target, raw, options)
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise Busy("the server is busy (too many requests waiting): retry later") from None
        return job.future

    def close(self) -> None:
        """Finish the queued requests, then stop the worker."""
        self.jobs.put(None)
        self._thread.join()

    def _take(self) -> tuple[list[Job], bool]:
        """The next requests to run (blocking for the first one); True once closed."""
        first = self.jobs.get()
        if first is None:
            return [], True
        taken, deadline = [first], time.monotonic() + self.window
        while len(taken) < self.max_batch:
            try:
                job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                self.jobs.put(None)  # stop after this round
                break
            taken.append(job)
        return taken, False

    def _run(self) -> None:
        while True:
            taken, closed = self._take()
            if closed:
                return
            groups: dict[tuple[Modality, Modality, DecodingOptions], list[Job]] = {}
            for job in taken:
                groups.setdefault(job.key, []).append(job)
            for jobs in groups.values():
                self._translate(jobs)

    def _translate(self, jobs: list[Job]) -> None:
        ready: list[tuple[Job, Any]] = []
        for job in jobs:
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                ready.append((job, self.bundle.prepare(job.source, job.raw)))
            except Exception as error:  # noqa: BLE001 - the request's own failure
                job.future.set_exception(error)
        if not ready:
            return
        source, target, options = ready[0][0].key
        try:
            self.batches.append(len(ready))
            results = self.bundle.translate_ids(source, [ids for _, ids in ready], target, options,
                                                batch_size=len(ready))
        except Exception as error:  # noqa: BLE001
            if len(ready) == 1:
                ready[0][0].future.set_exception(error)
                return
            # one input may be at fault (e.g. too long): run each alone so only it fails
            for job, ids in ready:
                try:
                    job.future.set_result(
                        self.bundle.translate_ids(source, [ids], target, options)[0])
                except Exception as single:  # noqa: BLE001
                    job.future.set_exception(single)
            return
        for (job, _), result in zip(ready, results, strict=True):
            job.future.set_result(result)
