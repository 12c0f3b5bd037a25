"""Codec and judge trainers: each a function over an options dataclass, run by ``tmt codec train``."""
