"""The serving queue without a model: grouping by direction and options, a failing input failing
alone, a full queue refused, closing after the queued work."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from tmt.errors import TmtError
from tmt.modality import Modality
from tmt.serve.batcher import Batcher, Busy
from tmt.translator.generate import DecodingOptions

TEXT, IMAGE, SPEECH = Modality.TEXT, Modality.IMAGE, Modality.SPEECH


class FakeBundle:
    """Upper-cases text; 'bad' fails to prepare; 'long' prepares but fails in a batch and alone."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.calls: list[list[str]] = []

    def prepare(self, source, raw):
        if self.gate is not None:
            self.gate.wait(5)
        if raw == "bad":
            raise TmtError("bad input")
        return raw

    def translate_ids(self, source, encoded, target, options, *, batch_size=16):
        self.calls.append(list(encoded))
        if "long" in encoded:
            raise TmtError("input too long")
        return [SimpleNamespace(output=f"{x.upper()}:{target.value}:{options.beam_size}") for x in encoded]


def test_requests_are_grouped_by_direction_and_options():
    bundle = FakeBundle()
    batcher = Batcher(bundle, max_batch=8, window=0.2)
    beam1 = DecodingOptions(beam_size=1)
    futures = [batcher.submit(TEXT, IMAGE, "a", DecodingOptions()), batcher.submit(TEXT, SPEECH, "b", DecodingOptions()),
               batcher.submit(TEXT, IMAGE, "c", DecodingOptions()), batcher.submit(TEXT, IMAGE, "d", beam1)]
    assert [f.result(5).output for f in futures] == ["A:image:5", "B:speech:5", "C:image:5", "D:image:1"]
    assert sorted(map(sorted, bundle.calls)) == [["a", "c"], ["b"], ["d"]]
    batcher.close()


def test_a_bad_input_fails_alone():
    bundle = FakeBundle()
    batcher = Batcher(bundle, max_batch=8, window=0.2)
    futures = [batcher.submit(TEXT, IMAGE, x, DecodingOptions()) for x in ("a", "bad", "long", "b")]
    assert futures[0].result(5).output == "A:image:5" and futures[3].result(5).output == "B:image:5"
    for k, message in ((1, "bad input"), (2, "too long")):
        with pytest.raises(TmtError, match=message):
            futures[k].result(5)
    batcher.close()


def test_a_full_queue_is_refused_and_close_answers_what_waits():
    gate = threading.Event()
    batcher = Batcher(FakeBundle(gate), max_batch=1, window=0.0, max_queue=2)
    first = batcher.submit(TEXT, IMAGE, "a", DecodingOptions())  # taken by the worker, held at the gate
    while batcher.jobs.qsize():
        time.sleep(0.001)
    waiting = [batcher.submit(TEXT, IMAGE, x, DecodingOptions()) for x in ("b", "c")]
    with pytest.raises(Busy, match="busy"):
        batcher.submit(TEXT, IMAGE, "d", DecodingOptions())
    gate.set()
    batcher.close()
    assert [f.result(0).output for f in (first, *waiting)] == ["A:image:5", "B:image:5", "C:image:5"]


def test_bad_settings_are_refused():
    with pytest.raises(TmtError):
        Batcher(FakeBundle(), max_batch=0)
