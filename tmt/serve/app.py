"""The web app behind ``tmt serve``: the page, ``POST /translate``, ``GET /health`` and
``GET /info`` over one loaded bundle.

Everything a client sends stays in memory: uploads are read into bytes (never written under a
name the client chose, never used as a path), bounded by ``max_upload`` bytes, and checked for
their type before the model sees them. Errors are JSON ``{"error": "..."}`` with a 4xx status and
the CLI's one-line message.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
import time
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tmt.errors import TmtError
from tmt.modality import Modality
from tmt.serve.batcher import Batcher, Busy
from tmt.version import __version__

log = logging.getLogger(__name__)

#: Largest request body read (bytes): a minute of 48 kHz 16-bit stereo WAV is about 11 MB.
MAX_UPLOAD = 16 * 1024 * 1024

#: Form fields that set decoding options, with their types (``max_len`` caps text and speech).
OPTION_FIELDS: dict[str, type] = {"strategy": str, "beam_size": int, "temperature": float,
                                  "top_k": int, "top_p": float, "len_penalty": float,
                                  "rerank": float, "seed": int, "max_len": int}

#: Declared upload types accepted per source (the content is checked by decoding it anyway).
ACCEPTED_TYPES = {Modality.SPEECH: ("audio/",), Modality.IMAGE: ("image/",)}
NEUTRAL_TYPES = ("", "application/octet-stream")


class RequestError(Exception):
    """A client mistake: ``status`` and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 beyond ``limit`` bytes (from Content-Length when the
    client sends one, else while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"upload of {int(declared)} bytes is larger than the server "
                                f"takes ({limit} bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"upload is larger than the server takes ({limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_options(bundle: Any, form: Any) -> Any:
    """The bundle's decoding defaults with the option fields of the form on top."""
    changes: dict[str, Any] = {}
    for name, kind in OPTION_FIELDS.items():
        value = form.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise RequestError(400, f"option {name} must be a plain field, not a file")
        try:
            parsed = kind(value)
        except ValueError:
            raise RequestError(400, f"option {name} must be {kind.__name__}, not {value!r}") from None
        if name == "max_len":
            changes.update(max_text_len=parsed, max_speech_len=parsed)
        else:
            changes[name] = parsed
    return bundle.options(changes)


def field_modality(form: Any, name: str) -> Modality:
    value = form.get(name)
    if not isinstance(value, str) or not value:
        raise RequestError(400, f"missing field {name!r}: text, speech or image")
    try:
        return Modality.parse(value)
    except TmtError as error:
        raise RequestError(400, f"{name}: {error}") from None


async def read_input(form: Any, source: Modality) -> Any:
    """The ``text`` field for a text source, else the bytes of the ``file`` upload (type
    checked)."""
    if source is Modality.TEXT:
        text = form.get("text")
        if not isinstance(text, str) or not text.strip():
            raise RequestError(400, "missing field 'text': the text to translate")
        return text
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise RequestError(400, f"missing field 'file': the {source.value} file to translate")
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if declared not in NEUTRAL_TYPES and not declared.startswith(ACCEPTED_TYPES[source]):
        raise RequestError(415, f"a {source.value} source needs an {ACCEPTED_TYPES[source][0]}* "
                                f"file, not {declared}")
    data = await upload.read()
    if not data:
        raise RequestError(400, f"the {source.value} file is empty")
    return data


def encode_output(target: Modality, output: Any) -> tuple[bytes, str]:
    """A translation's output as response bytes and media type (PNG, 16-bit WAV)."""
    buffer = io.BytesIO()
    if target is Modality.IMAGE:
        output.save(buffer, format="PNG")
        return buffer.getvalue(), "image/png"
    import numpy as np
    import soundfile as sf

    from tmt.speech.audio import SAMPLE_RATE

    wave = np.clip(np.asarray(output, dtype=np.float32).reshape(-1), -1.0, 1.0)
    sf.write(buffer, wave, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue(), "audio/wav"


def page() -> str:
    return resources.files("tmt.serve").joinpath("static/index.html").read_text(encoding="utf-8")


def create_app(bundle: Any, *, max_upload: int = MAX_UPLOAD, max_batch: int = 8,
               window: float = 0.01, max_queue: int = 64) -> Starlette:
    """The app over a loaded :class:`~tmt.bundle.Bundle` (or anything with its ``prepare``,
    ``translate_ids``, ``options``, ``name`` and ``card``). Requests of one direction and
    options that arrive within ``window`` seconds are translated as one batch of at most
    ``max_batch``."""
    batcher = Batcher(bundle, max_batch=max_batch, window=window, max_queue=max_queue)
    info = {"name": bundle.name, "description": bundle.card(), "version": __version__,
            "modalities": [m.value for m in Modality], "max_upload": max_upload,
            "precision": bundle.options().precision}

    async def index(request: Request) -> Response:
        return HTMLResponse(page())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": bundle.name})

    async def about(request: Request) -> Response:
        return JSONResponse(info)

    async def translate(request: Request) -> Response:
        started = time.perf_counter()
        try:
            payload = await read_body(request, max_upload)

            async def replay() -> dict[str, Any]:  # the body, read once under the limit
                return {"type": "http.request", "body": payload, "more_body": False}

            parse = Request(request.scope, replay).form(
                max_files=1, max_fields=len(OPTION_FIELDS) + 4, max_part_size=64 * 1024)
            async with parse as form:
                source, target = (field_modality(form, name) for name in ("source", "target"))
                if source is target:
                    raise RequestError(400, f"source and target are both {source.value}")
                raw = await read_input(form, source)
                options = parse_options(bundle, form)
            result = await asyncio.wrap_future(batcher.submit(source, target, raw, options))
        except RequestError as error:
            return error_response(error.status, str(error))
        except HTTPException as error:  # malformed multipart body
            return error_response(error.status_code, str(error.detail))
        except Busy as error:
            return error_response(503, str(error))
        except TmtError as error:
            return error_response(400, str(error))
        except Exception as error:  # noqa: BLE001 - the server keeps answering
            log.exception("tmt serve: request failed")
            return error_response(500, f"internal error: {type(error).__name__}: {error}")
        seconds = time.perf_counter() - started
        score = result.score if math.isfinite(result.score) else None  # JSON has no NaN
        headers = {"X-Tmt-Seconds": f"{seconds:.3f}", "X-Tmt-Score": f"{score}",
                   "Cache-Control": "no-store"}
        if target is Modality.TEXT:
            return JSONResponse({"text": result.output, "score": score,
                                 "seconds": round(seconds, 3)}, headers=headers)
        body, media_type = encode_output(target, result.output)
        return Response(body, media_type=media_type, headers=headers)

    async def http_error(request: Request, error: HTTPException) -> Response:
        return error_response(error.status_code, str(error.detail))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        batcher.close()  # the requests already queued are answered first

    app = Starlette(
        routes=[Route("/", index), Route("/health", health), Route("/info", about),
                Route("/translate", translate, methods=["POST"])],
        exception_handlers={HTTPException: http_error},  # type: ignore[dict-item]
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.info = info
    return app
