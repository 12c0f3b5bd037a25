"""Run by torchrun in test_image_distributed.py: stage-2-like steps of a small image codec on each
rank's half of every batch, with a dead-code restart every 2 steps; saves this rank's weights
and the restart counts."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from tmt.image.codec import ImageCodec
from tmt.image.config import ImageCodecConfig
from tmt.train.codecs.image_steps import Trainer, TrainOptions
from tmt.train.distributed import Dist
from tmt.train.sampling import batch_indices

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "train" / "codecs"))
from test_compiling import SMALL  # noqa: E402

out = sys.argv[1]
torch.set_num_threads(1)
dist = Dist.from_env()
torch.manual_seed(0)
codec = ImageCodec(ImageCodecConfig.from_dict(SMALL))  # the same weights on every rank
images = torch.rand(16, 3, 16, 16) * 2 - 1
trainer = Trainer(codec, TrainOptions(steps=6, batch_size=8, restart_every=2), dist=dist)
restarted = []
for step in range(6):
    index = batch_indices(len(images), 8 // dist.world_size, step, 0, rank=dist.rank,
                          world_size=dist.world_size)
    restarted.append(trainer.train_step(images[index])["restarted"])
save_file({k: v.contiguous() for k, v in codec.state_dict().items()}, f"{out}/rank{dist.rank}.safetensors")
Path(f"{out}/restarted-rank{dist.rank}.json").write_text(json.dumps(restarted))
dist.barrier()
dist.close()
