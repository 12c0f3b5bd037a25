"""Trainers of the codecs and judges: each a function over an options dataclass."""
