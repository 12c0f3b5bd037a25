"""Drawing tmt-shapes scenes: one or two flat shapes on a plain light background.

Geometry is in fractions of the image side, so any ``image_size`` draws the same scene.
Shapes are drawn at 4× resolution and box-filtered down (anti-aliasing that is exactly
reproducible). Jitter (position, size, colour shade, background tint) comes from the
caller's random generator.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from tmt.data.shapes_world import Record

SUPERSAMPLE = 4

COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (215, 30, 30),
    "green": (30, 155, 50),
    "blue": (35, 75, 215),
    "yellow": (240, 205, 20),
    "purple": (135, 50, 175),
    "orange": (250, 130, 10),
    "black": (25, 25, 25),
    "pink": (250, 125, 190),
}

SIZE_RANGE = {"small": (0.18, 0.23), "large": (0.34, 0.40)}
"""Object diameter as a fraction of the image side (uniform within the range)."""

POSITION_CENTRE = {
    "on the left": (0.25, 0.5),
    "on the right": (0.75, 0.5),
    "at the top": (0.5, 0.25),
    "at the bottom": (0.5, 0.75),
    "in the middle": (0.5, 0.5),
}
POSITION_JITTER = 0.05
PAIR_OFFSET = 0.23
"""Two objects sit at 0.5 ± PAIR_OFFSET along the relation's axis (never overlapping)."""
PAIR_JITTER = (0.02, 0.10)
"""Jitter of a pair's centres along / across the relation's axis."""


def _polygon(shape: str) -> list[tuple[float, float]]:
    """Unit outline (radius 1, centred on 0, y pointing down) of every shape but circle."""
    def ring(n: int, radius: float, phase: float) -> list[tuple[float, float]]:
        return [
            (radius * math.cos(phase + 2 * math.pi * k / n),
             radius * math.sin(phase + 2 * math.pi * k / n))
            for k in range(n)
        ]

    if shape == "square":
        h = 0.82
        return [(-h, -h), (h, -h), (h, h), (-h, h)]
    if shape == "triangle":
        return [(x, y + 0.12) for x, y in ring(3, 1.0, -math.pi / 2)]
    if shape == "star":
        outer = ring(5, 1.0, -math.pi / 2)
        inner = ring(5, 0.45, -math.pi / 2 + math.pi / 5)
        return [p for pair in zip(outer, inner, strict=True) for p in pair]
    if shape == "heart":
        pts = []
        for k in range(64):
            t = 2 * math.pi * k / 64
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((x / 16.5, -y / 16.5 + 0.05))
        return pts
    if shape == "diamond":
        return [(0.0, -1.0), (0.68, 0.0), (0.0, 1.0), (-0.68, 0.0)]
    if shape == "cross":
        a, w = 0.95, 0.32
        return [(-w, -a), (w, -a), (w, -w), (a, -w), (a, w), (w, w), (w, a), (-w, a),
                (-w, w), (-a, w), (-a, -w), (-w, -w)]
    if shape == "hexagon":
        return ring(6, 1.0, 0.0)
    raise ValueError(f"unknown shape {shape!r}")


def _shade(colour: str, rng: np.random.Generator) -> tuple[int, int, int]:
    base = np.asarray(COLOUR_RGB[colour], dtype=np.float64)
    rgb = base * rng.uniform(0.9, 1.06) + rng.uniform(-8, 8, size=3)
    return tuple(int(v) for v in np.clip(np.round(rgb), 0, 255))  # type: ignore[return-value]


def _layout(record: Record, radii: list[float], rng: np.random.Generator) -> list[tuple[float, float]]:
    """Object centres (fractions of the side), kept inside the frame."""
    objs = record["objects"]
    if len(objs) == 1:
        cx, cy = POSITION_CENTRE[record["position"]]
        centres = [(cx + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
                    cy + rng.uniform(-POSITION_JITTER, POSITION_JITTER))]
    else:
        along, across = PAIR_JITTER
        first, second = 0.5 - PAIR_OFFSET, 0.5 + PAIR_OFFSET  # first = top / left
        if record["relation"] in ("below", "to the right of"):
            first, second = second, first
        coords = []
        for main in (first, second):
            a = main + rng.uniform(-along, along)
            b = 0.5 + rng.uniform(-across, across)
            vertical = record["relation"] in ("above", "below")
            coords.append((b, a) if vertical else (a, b))
        centres = coords
    margin = 0.01
    return [
        (float(np.clip(x, r + margin, 1 - r - margin)), float(np.clip(y, r + margin, 1 - r - margin)))
        for (x, y), r in zip(centres, radii, strict=True)
    ]


def render_scene(record: Record, rng: np.random.Generator, image_size: int = 64) -> Image.Image:
    """Draw the scene of an attribute record as an RGB image of ``image_size`` pixels."""
    side = image_size * SUPERSAMPLE
    background = tuple(int(v) for v in np.round(rng.uniform(228, 250, size=3)))
    image = Image.new("RGB", (side, side), background)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(image)
    objs = record["objects"]
    radii = [rng.uniform(*SIZE_RANGE[o["size"]]) / 2 for o in objs]
    centres = _layout(record, radii, rng)
    for obj, r, (cx, cy) in zip(objs, radii, centres, strict=True):
        fill = _shade(obj["colour"], rng)
        x0, y0, rad = cx * side, cy * side, r * side
        if obj["shape"] == "circle":
            draw.ellipse((x0 - rad, y0 - rad, x0 + rad, y0 + rad), fill=fill)
        else:
            draw.polygon([(x0 + rad * u, y0 + rad * v) for u, v in _polygon(obj["shape"])], fill=fill)
    return image.reduce(SUPERSAMPLE)
