"""``tmt eval --report FILE.html``: one self-contained page a person can look at.

Per tmt-shapes split: the metrics of every direction; per-attribute accuracy and error kinds as
bar charts (inline SVG); shape and colour confusions of the image outputs read by the judge; a
grid of text→image and speech→image outputs beside the reference pictures with the judge's
reading; image→text captions beside their images; audio players for generated speech with the
speech judge's transcript. Unseen-voice sets become a table per voice and condition; other
benchmarks a metrics table. Every page carries its provenance (model path and weights hash, tmt
version, git commit when there is one, command, date). Media are embedded (data URIs), so the
file can be mailed or attached as it is.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tmt.data.shapes_world import parse_caption

#: Items shown per direction in the output grids.
GRID_ITEMS = 12


def provenance(model_path: str | Path) -> dict[str, Any]:
    """Where a report comes from: model, weights hash, tmt version, git commit, command, date."""
    from tmt.version import __version__

    model_path = Path(model_path).resolve()
    weights = model_path / "translator" / "model.safetensors"
    digest = None
    if weights.is_file():
        sha = hashlib.sha256()
        with weights.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
        digest = sha.hexdigest()[:16]
    commit = None
    try:
        done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10, cwd=Path(__file__).resolve().parent)
        commit = done.stdout.strip() or None if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"model": str(model_path), "weights_sha256": digest, "tmt_version": __version__,
            "git_commit": commit, "command": "tmt " + " ".join(sys.argv[1:]),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _pct(x: Any) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else html.escape(str(x))


def _bars(values: dict[str, float], *, percent: bool = True, width: int = 360) -> str:
    """A horizontal bar chart as inline SVG (no plotting library needed)."""
    if not values:
        return ""
    top = max(values.values()) if not percent else 1.0
    top = top or 1.0
    row = 18
    parts = [f'<svg width="{width + 220}" height="{row * len(values) + 4}" role="img">']
    for i, (name, value) in enumerate(values.items()):
        y = i * row + 2
        w = max(0.0, float(value)) / top * width
        label = _pct(value) if percent else str(value)
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{html.escape(name)}</text>'
                     f'<rect x="110" y="{y}" width="{w:.1f}" height="{row - 4}" fill="#4a7bd0"/>'
                     f'<text x="{115 + w:.1f}" y="{y + 13}" font-size="12">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _confusions(rows: list[dict[str, Any]], key: str) -> str:
    """Reference → judged value of ``key`` (shape or colour) over one-object scenes, errors only."""
    counts: Counter[tuple[str, str]] = Counter()
    for row in rows:
        ref, got = parse_caption(row.get("reference", "")), parse_caption(row.get("text", ""))
        if ref is None or len(ref["objects"]) != 1:
            continue
        truth = ref["objects"][0][key]
        seen = got["objects"][0][key] if got is not None and len(got["objects"]) == 1 else "(unreadable)"
        if seen != truth:
            counts[(truth, seen)] += 1
    if not counts:
        return f"<p>{key}: no confusion among one-object scenes.</p>"
    cells = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{n}</td></tr>"
                    for (a, b), n in counts.most_common(10))
    return (f"<table><caption>{key} confusions (one-object scenes)</caption>"
            f"<tr><th>reference</th><th>judged</th><th>count</th></tr>{cells}</table>")


def _metrics_table(scores: dict[str, Any]) -> str:
    flat = {k: v for k, v in scores.items() if isinstance(v, (int, float, str)) and k != "examples"}
    def show(key: str, value: Any) -> str:
        if key in ("wer", "judge_wer"):
            return _pct(value)
        return html.escape(str(round(value, 4) if isinstance(value, float) else value))

    cells = "".join(f"<tr><td>{html.escape(k)}</td><td>{show(k, v)}</td></tr>" for k, v in flat.items())
    return f"<table>{cells}</table>" if cells else ""


def _grid(direction: str, rows: list[dict[str, Any]], media: Path, images: dict[str, Path]) -> str:
    """Output beside reference for the first items of one direction."""
    source, target = direction.split("-")[0], direction.split("-")[-1]
    cells = []
    for row in rows[:GRID_ITEMS]:
        k, item = row["index"], str(row["source"])
        ref_img = images.get(item)
        # the item's picture: the input of image->X, the reference of X->image
        ref = (f'<img src="{_data_uri(ref_img, "image/png")}" width="96" alt="{source} item picture">'
               if ref_img is not None and ref_img.is_file() else "")
        if target == "image" and (media / f"{k:06d}.png").is_file():
            out = f'<img src="{_data_uri(media / f"{k:06d}.png", "image/png")}" width="96" alt="output">'
            reading = f"judge: {html.escape(row.get('text', ''))}"
        elif target == "speech" and (media / f"{k:06d}.wav").is_file():
            out = f'<audio controls src="{_data_uri(media / f"{k:06d}.wav", "audio/wav")}"></audio>'
            reading = f"judge heard: {html.escape(row.get('text', ''))}"
        else:
            out = f"<b>{html.escape(row.get('text', ''))}</b>"
            reading = ""
        cells.append(f'<div class="cell">{ref}{out}<div>ref: {html.escape(row.get("reference", ""))}'
                     f"</div><div>{reading}</div></div>")
    return f'<div class="grid">{"".join(cells)}</div>'


def _split_section(name: str, report: dict[str, Any], saved: Path | None) -> str:
    images: dict[str, Path] = {}
    if saved is not None and report.get("corpus"):
        from tmt.data.shapes import read_corpus

        try:
            images = {x.id: Path(x.image) for x in read_corpus(report["corpus"], report["split"])}
        except Exception:  # the corpus moved since the evaluation: no reference pictures
            images = {}
    parts = [f"<h2>split {html.escape(name)} ({report.get('items', '?')} items)</h2>"]
    for direction, scores in report.get("directions", {}).items():
        parts.append(f"<h3>{html.escape(direction)}</h3>")
        parts.append(_metrics_table(scores))
        if "attributes" in scores:
            parts.append("<h4>attribute accuracy</h4>" + _bars(scores["attributes"]))
        if scores.get("errors"):
            parts.append("<h4>error kinds (items)</h4>" + _bars(scores["errors"], percent=False))
        folder = saved / direction.split(" ")[0] if saved is not None else None
        if folder is not None and (folder / "outputs.json").is_file():
            rows = json.loads((folder / "outputs.json").read_text())
            if direction.endswith("image") or direction.endswith("text"):
                parts.append(_confusions(rows, "shape") + _confusions(rows, "colour"))
            parts.append(_grid(direction, rows, folder, images))
    return "\n".join(parts)


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _unseen_section(name: str, report: dict[str, Any]) -> str:
    head = ("<tr><th>voice</th><th>condition</th><th>n</th><th>unit error</th><th>speech→text WER"
            "</th><th>speech→image</th><th>text→image</th><th>ratio</th></tr>")
    body = "".join(
        f"<tr><td>{html.escape(r['voice'])}</td><td>{html.escape(r['condition'])}</td>"
        f"<td>{r['utterances']}</td><td>{_pct(r['unit_error_rate'])}</td>"
        f"<td>{_pct(r['speech_text_wer'])}</td><td>{_pct(r['speech_image_exact'])}</td>"
        f"<td>{_pct(r['text_image_exact'])}</td><td>{_ratio(r['ratio'])}</td></tr>"
        for r in report.get("rows", []))
    chart = _bars({f"{r['voice']} {r['condition']}": r["speech_image_exact"] for r in report.get("rows", [])})
    return (f"<h2>{html.escape(name)}</h2><table>{head}{body}</table>"
            f"<h4>speech→image exact per voice and condition</h4>{chart}")


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;
margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}caption{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:8px}.cell{border:1px solid #ddd;padding:4px;width:260px;
font-size:12px}.cell img{margin-right:4px;image-rendering:pixelated}audio{width:250px}"""


def write_html_report(path: str | Path, reports: dict[str, Any], *, info: dict[str, Any],
                      saved: dict[str, Path] | None = None) -> Path:
    """Write the page for ``reports`` (what ``tmt eval`` prints: split → report, and
    ``unseen:DIR`` → unseen-voice report); ``saved`` maps a split to its ``--save-outputs``
    folder (outputs.json + media per direction)."""
    path = Path(path)
    sections = []
    for name, report in reports.items():
        if name.startswith("unseen:"):
            sections.append(_unseen_section(name, report))
        elif isinstance(report, dict) and "directions" in report:
            sections.append(_split_section(name, report, (saved or {}).get(name)))
    prov = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in info.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>tmt eval report</title>"
            f"<style>{STYLE}</style></head><body><h1>tmt eval report</h1>"
            f"<table><caption>provenance</caption>{prov}</table>{''.join(sections)}</body></html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
