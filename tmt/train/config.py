"""Training configuration: a YAML file of overrides over :class:`TrainConfig`'s defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from tmt import precision
from tmt.errors import TmtError
from tmt.modality import DIRECTIONS, Modality, parse_direction
from tmt.validate import check_fields


@dataclass(kw_only=True)
class TrainConfig:
    """Everything a training run needs; ``tmt train --config FILE.yaml`` fills it."""

    out_dir: str
    """Where checkpoints (``last.pt``), the final bundle (``model/``) and logs go."""

    stores: list[str] = field(default_factory=list)
    """Token-store directories read for training (real and pseudo data may be mixed)."""

    train_split: str = "train"
    valid_split: str = "valid"

    vocab: dict[str, int] = field(default_factory=dict)
    """Per-modality vocabulary sizes, e.g. ``{speech: 200, image: 8192, text: 30522}``;
    read from the stores when empty."""

    preset: str = "tiny"
    """Translator preset (``tiny`` or ``paper``)."""

    model: dict[str, Any] = field(default_factory=dict)
    """Overrides of the preset's :class:`~tmt.translator.config.TranslatorConfig` fields."""

    init_from_bert: str | None = None
    """A local HuggingFace BERT directory to initialise both encoder and decoder from."""

    init_from: str | None = None
    """A translator checkpoint directory to fine-tune from (e.g. the pre-trained model)."""

    image_embeddings_from: str | None = None
    """An image codec directory (a new model only): the image ids' rows of the embedding table
    start from its codebook (:meth:`~tmt.translator.model.Translator.init_code_embeddings`)."""

    directions: list[str] = field(default_factory=lambda: [f"{s}-{t}" for s, t in DIRECTIONS])
    """Directions trained, as ``source-target``; the loss is summed over them."""

    source_directions: dict[str, list[str]] = field(default_factory=dict)
    """Per data source (a store record's ``source``), the directions its examples serve, e.g.
    ``{shapes-input-voices: [speech-text, speech-image]}``: speech in extra voices is used as
    input only, so that generated speech keeps the one voice the vocoder speaks."""

    pseudo_ratio: float | None = None
    """Fraction of each batch drawn from back-translated (``pseudo``) examples, the rest from
    real ones (each pool in its own seeded epoch order); None: sample the mixed stores
    uniformly, so each pool's share is its size."""

    pseudo_as_target: bool = False
    """False (the back-translation practice): a pseudo example trains only the directions
    whose target is real (e.g. pseudo caption -> real image), never to reproduce generated
    media. True: all its directions. A ``source_directions`` entry for its source wins."""

    directions_per_example: int = 0
    """0: every example contributes all its available directions to a batch; k: k of them,
    drawn afresh each step (the batch still sums the loss over all six directions, at a
    fraction of the compute per example)."""

    direction_weights: dict[str, float] = field(default_factory=dict)
    """Relative chances of the ``directions_per_example`` draw, e.g. ``{image-text: 2}``;
    unlisted directions weigh 1. Moves compute towards the directions that learn slowest."""

    loss_weights: dict[str, float] = field(default_factory=dict)
    """Multipliers of the directions' mean token losses in the summed loss, e.g.
    ``{text-speech: 0.37}``; unlisted directions weigh 1. A direction whose tokens each carry
    more (unit-BPE speech pieces stand for 2.7 units each) has a per-token loss larger by about
    as much, and as much more pull on the shared weights; units per piece as its weight puts
    the balance back. Validation losses are reported unweighted."""

    speech_bpe: str | None = None
    """A unit-BPE file over the stores' speech units (``bpe.json`` of a speech codec from
    ``tmt codec train unit-bpe``): the translator reads and writes its pieces, which the
    trainer cuts from the stored units as it goes (the stores keep units)."""

    speech_bpe_dropout: float = 0.0
    """With ``speech_bpe``: where a training example's speech is the source, each merge is
    skipped with this chance wherever it applies (BPE-dropout, Provilkov et al. 2020), so the
    encoder meets many segmentations of an utterance, not only the one inference gives it.
    Speech targets and validation get the learned segmentation."""

    speech_unit_noise: float = 0.0
    """Where a training example's speech is the source, its units are corrupted before the
    translator reads them (before ``speech_bpe`` cuts them): each example draws a rate uniformly
    in ``[0, speech_unit_noise]`` and each unit is then substituted, dropped or followed by an
    inserted random unit with a third of that chance each (:func:`tmt.train.unit_noise.
    corrupt_units`; seeded by seed, step and index). The translator then meets units as wrong as
    a speech tokenizer's on voices it never heard. Speech targets and validation are untouched.
    """

    batch_size: int = 32
    """Examples per step and process (each example yields up to six directions)."""

    share_encoder: bool = False
    """The directions drawn for one example that have the same source read one encoder pass
    of it (e.g. speech->text and speech->image of an utterance): the same loss, less compute
    (dropout in the encoder is then shared by those directions)."""

    sources_per_pass: int = 0
    """0: one forward/backward pass per direction (per source modality with
    ``share_encoder``); n: those pairs, sorted by source length, go through passes of at most
    n sources (less padding; each direction's loss is still the mean over its target tokens
    in the whole batch, so the update is the same up to rounding)."""

    autocast: str = "none"
    """``bf16``: the training forward runs under CPU/GPU bfloat16 autocast (weights, optimizer
    and loss stay float32; validation runs in float32); ``none``: float32 throughout; ``auto``:
    bf16 where the device computes it natively (:func:`tmt.precision.native_bf16`), else none."""

    max_steps: int = 1000
    lr: float = 5e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0
    """Cosine decay ends at ``lr * min_lr_ratio``."""

    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    label_smoothing: float = 0.1
    seed: int = 0

    log_every: int = 10
    valid_every: int = 200
    valid_examples: int = 256
    """Validation uses at most this many examples of the validation split."""

    checkpoint_every: int = 200
    device: str = "cpu"
    num_threads: int | None = None
    """torch intra-op threads per process (None: torch's default)."""

    def parsed_directions(self, names: list[str] | None = None) -> list[tuple[Modality, Modality]]:
        return [parse_direction(name) for name in (self.directions if names is None else names)]

    def direction_map(self, key: str) -> dict[tuple[Modality, Modality], float]:
        """A per-direction weight mapping (``direction_weights``, ``loss_weights``) by parsed
        direction; raises TmtError on an unknown direction or a weight that is not positive."""
        weights: dict[str, float] = getattr(self, key)
        if any(not w > 0 for w in weights.values()):
            raise TmtError(f"{key} must be positive")
        return dict(zip(self.parsed_directions(list(weights)), weights.values(), strict=True))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TmtError(f"{source}: unknown keys: {', '.join(unknown)}")
        if "out_dir" not in data:
            raise TmtError(f"{source}: missing required key 'out_dir'")
        if "betas" in data:
            data = {**data, "betas": tuple(data["betas"])}
        data = _yaml_numbers(cls, data)
        try:
            config = cls(**data)
        except TypeError as error:
            raise TmtError(f"{source}: {error}") from None
        check_fields(config, source)
        config.parsed_directions()
        for names in config.source_directions.values():
            config.parsed_directions(names)
        for key in ("direction_weights", "loss_weights"):
            try:
                config.direction_map(key)
            except TmtError as error:
                raise TmtError(f"{source}: {error}") from None
        if config.pseudo_ratio is not None and not 0.0 <= config.pseudo_ratio <= 1.0:
            raise TmtError(f"{source}: pseudo_ratio must be between 0 and 1")
        if config.autocast not in precision.CHOICES:
            raise TmtError(
                f"{source}: autocast must be one of {', '.join(precision.CHOICES)}, "
                f"not {config.autocast!r}"
            )
        if not 0.0 <= config.speech_bpe_dropout < 1.0:
            raise TmtError(f"{source}: speech_bpe_dropout must be in [0, 1)")
        if config.speech_bpe_dropout and not config.speech_bpe:
            raise TmtError(f"{source}: speech_bpe_dropout needs speech_bpe")
        if not 0.0 <= config.speech_unit_noise <= 1.0:
            raise TmtError(f"{source}: speech_unit_noise must be in [0, 1]")
        if config.sources_per_pass < 0:
            raise TmtError(f"{source}: sources_per_pass must be 0 (off) or positive")
        for name in ("batch_size", "max_steps"):
            if getattr(config, name) < 1:
                raise TmtError(f"{source}: {name} must be at least 1")
        return config

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
        if Path(path).is_dir():
            raise TmtError(f"config {path} is a directory, not a YAML file")
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise TmtError(f"config file not found: {path}") from None
        except (UnicodeDecodeError, ValueError) as error:
            raise TmtError(f"{path}: not a YAML text file ({type(error).__name__})") from None
        except yaml.YAMLError as error:
            raise TmtError(f"{path}: invalid YAML: {error}") from None
        if not isinstance(data, dict):
            raise TmtError(f"{path}: expected a mapping of keys to values")
        # Relative store / output paths are relative to the working directory, as on a CLI.
        # A mapping override (e.g. ``model``) updates the file's mapping instead of replacing it.
        for key, value in (overrides or {}).items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return cls.from_dict(data, source=str(path))


def _yaml_numbers(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """YAML 1.1 reads ``3e-4`` (no dot) as a string: such a string in a float field is the
    number it spells; anything else is left for :func:`check_fields` to refuse."""
    import typing

    hints = typing.get_type_hints(cls)
    out = dict(data)
    for key, value in data.items():
        wants_float = hints.get(key) in (float, float | None)
        if wants_float and isinstance(value, str):
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out
