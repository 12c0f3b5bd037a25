import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Test modules share fixtures by module name (`from test_train import MICRO`, `from
# speech_fixtures import utterance`) across the folders of tests/unit, which mirror tmt/.
for _folder in sorted((Path(__file__).parent / "unit").rglob("*")):
    if _folder.is_dir() and _folder.name != "__pycache__":
        sys.path.insert(0, str(_folder))
sys.path.insert(0, str(Path(__file__).parent / "unit"))
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
