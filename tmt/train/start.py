"""What a translator run starts from: the model (a preset, BERT weights or a checkpoint to
fine-tune), its optimiser and its learning-rate schedule."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from tmt.errors import TmtError
from tmt.modality import Modality
from tmt.train.config import TrainConfig
from tmt.train.schedule import warmup_cosine
from tmt.translator.config import TranslatorConfig, preset
from tmt.translator.model import Translator
from tmt.vocab import Vocabulary


def lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    """The scheduler's multiplier of ``config.lr`` at each step."""

    # a plain function, not a partial: LambdaLR saves callable objects into the checkpoint
    def factor(step: int) -> float:
        return warmup_cosine(step, warmup=config.warmup_steps, total=config.max_steps,
                             floor=config.min_lr_ratio)

    return factor


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    # No weight decay on biases, LayerNorms and 1-D tables (BERT's recipe).
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for _, param in {id(p): (n, p) for n, p in model.named_parameters()}.values():
        (decay if param.dim() >= 2 else no_decay).append(param)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=config.betas,
    )


def build_translator(config: TrainConfig, vocab_sizes: Mapping[str, int]) -> Translator:
    """The model a run starts from: a preset, a BERT init, or a checkpoint to fine-tune."""
    if config.init_from and config.image_embeddings_from:
        raise TmtError("image_embeddings_from initialises a new model; init_from continues one")
    if config.init_from:
        translator = Translator.load(config.init_from)
        expected = Vocabulary.from_sizes(vocab_sizes)
        if translator.vocab != expected:
            raise TmtError(
                f"init_from {config.init_from} has vocabulary {translator.vocab} but the data "
                f"needs {expected}"
            )
        return translator
    if config.init_from_bert:
        from tmt.translator.interop import config_from_bert, load_bert_weights, read_bert_checkpoint

        bert_config, _ = read_bert_checkpoint(config.init_from_bert)
        tconfig = config_from_bert(bert_config)
    else:
        tconfig = preset(config.preset)
    tconfig = TranslatorConfig.from_dict({**tconfig.to_dict(), **config.model})
    translator = Translator(tconfig, Vocabulary.from_sizes(vocab_sizes))
    if config.init_from_bert:
        load_bert_weights(translator, config.init_from_bert)
    if config.image_embeddings_from:
        from tmt.image.codec import ImageCodec

        codec = ImageCodec.load(config.image_embeddings_from)
        ids = torch.arange(codec.config.codebook_size)
        translator.init_code_embeddings(
            Modality.IMAGE, codec.quantizer.lookup(ids[None])[0], seed=config.seed
        )
    return translator
