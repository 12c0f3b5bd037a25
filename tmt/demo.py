"""``tmt demo``: all six directions on the repo's example inputs, outputs written to a folder."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from tmt.bundle import Bundle
from tmt.errors import TmtError
from tmt.modality import DIRECTIONS, Modality
from tmt.paths import EXAMPLES

_SUFFIX = {Modality.SPEECH: "wav", Modality.IMAGE: "png", Modality.TEXT: "txt"}


def example_inputs(folder: Path) -> dict[Modality, object]:
    files = {m: folder / f"{m.value}.{_SUFFIX[m]}" for m in Modality}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise TmtError(f"demo inputs missing: {', '.join(missing)}")
    return {
        Modality.SPEECH: files[Modality.SPEECH],
        Modality.IMAGE: files[Modality.IMAGE],
        Modality.TEXT: files[Modality.TEXT].read_text().strip(),
    }


def run_demo(
    out: str | Path, *, model: str = "shapes", examples: str | Path | None = None, device: str = "cpu"
) -> Iterator[str]:
    """Translate each example input into the two other modalities; yields one line per output."""
    from tmt.speech.audio import save_audio

    inputs = example_inputs(Path(examples) if examples else EXAMPLES)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = Bundle.load(model, device=device)
    yield f"model {bundle.name}: {bundle.num_parameters() / 1e6:.1f}M parameters"
    for source, target in DIRECTIONS:
        start = time.perf_counter()
        (result,) = bundle.translate([inputs[source]], source, target)
        path = out / f"{source.value}_to_{target.value}.{_SUFFIX[target]}"
        if target is Modality.TEXT:
            path.write_text(result.output + "\n")
            shown = f'"{result.output}"'
        elif target is Modality.SPEECH:
            save_audio(path, result.output)
            shown = str(path)
        else:
            result.output.save(path)
            shown = str(path)
        yield f"{source.value:6s} -> {target.value:6s} {shown}  ({time.perf_counter() - start:.2f} s)"
