import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One intra-op thread: the models under test are tiny, and more threads only oversubscribe
# a busy machine.
torch.set_num_threads(1)


@pytest.fixture
def tiny_vocab():
    from tmt.vocab import Vocabulary

    return Vocabulary(speech_size=20, image_size=30, text_size=40)


@pytest.fixture
def micro_config():
    from tmt.translator.config import TranslatorConfig

    return TranslatorConfig(
        model_dim=64,
        num_encoder_layers=2,
        num_decoder_layers=2,
        num_attn_heads=4,
        ffn_inner_dim=128,
        max_seq_len=128,
        dropout_p=0.0,
        attn_dropout_p=0.0,
    )
