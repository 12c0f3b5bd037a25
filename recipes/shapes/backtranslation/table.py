"""Print the back-translation demo's comparison table from ``tmt eval --out`` reports.

    python recipes/shapes/backtranslation/table.py paired=work/bt-shapes/eval-paired.json \
        pseudo=work/bt-shapes/eval-pseudo.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

# (label, direction, key, how to print it)
ROWS = [
    ("speech→text WER ↓", "speech-text", "wer", "pct"),
    ("image→text all attributes right ↑", "image-text", "attributes.exact", "pct"),
    ("image→text BLEU-4 ↑", "image-text", "bleu4", "num"),
    ("image→text CIDEr ↑", "image-text", "cider", "num"),
    ("text→speech judge WER ↓", "text-speech", "judge_wer", "pct"),
    ("image→speech judge WER ↓", "image-speech", "judge_wer", "pct"),
    ("text→image all attributes right ↑", "text-image", "attributes.exact", "pct"),
    ("text→image mean attribute accuracy ↑", "text-image", "mean_attribute", "pct"),
    ("speech→image all attributes right ↑", "speech-image", "attributes.exact", "pct"),
    ("speech→image mean attribute accuracy ↑", "speech-image", "mean_attribute", "pct"),
]


def value(report: dict[str, Any], direction: str, key: str) -> float | None:
    entry = report["directions"].get(direction, {})
    if key == "mean_attribute":
        attrs = {k: v for k, v in entry.get("attributes", {}).items() if k != "exact"}
        return sum(attrs.values()) / len(attrs) if attrs else None
    for part in key.split("."):
        entry = entry.get(part, {}) if isinstance(entry, dict) else {}
    return float(entry) if isinstance(entry, (int, float)) else None


def main() -> None:
    runs = [arg.split("=", 1) for arg in sys.argv[1:]]
    reports = {}
    for name, path in runs:
        data = json.loads(open(path).read())
        reports[name] = next(iter(data.values()))  # one split per report
    names = [name for name, _ in runs]
    print("| task / metric | " + " | ".join(names) + " |")
    print("| --- | " + " | ".join("---" for _ in names) + " |")
    for label, direction, key, fmt in ROWS:
        cells = []
        for name in names:
            v = value(reports[name], direction, key)
            cells.append("n/a" if v is None else f"{100 * v:.1f}%" if fmt == "pct" else f"{v:.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
