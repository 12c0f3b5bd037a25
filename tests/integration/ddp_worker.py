"""Run by torchrun in test_distributed.py. ``train``: train briefly, then save this rank's
weights. ``grads``: the validation losses (the ranks share the batches out), then one step
without dropout, then save the (all-reduced) gradients."""

import json
import sys

import torch
from safetensors.torch import save_file

from tmt.train.config import TrainConfig
from tmt.train.distributed import Dist
from tmt.train.loop import Trainer
from tmt.translator.checkpoint import translator_state

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "unit" / "train"))
from test_train import MICRO, VOCAB, concepts  # noqa: E402

out, mode = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "train"
torch.set_num_threads(1)
dist = Dist.from_env()
dropout = 0.1 if mode == "train" else 0.0
config = TrainConfig(out_dir=out, vocab=VOCAB, model={**MICRO, "dropout_p": dropout}, batch_size=4,
                     max_steps=6, lr=1e-3, warmup_steps=2, valid_every=1000, checkpoint_every=1000)
trainer = Trainer(config, concepts(4) * 4, concepts(4, seed=5) * 3, dist=dist)


def save(name: str) -> None:
    state = {k: v.contiguous() for k, v in translator_state(trainer.translator).items()}
    save_file(state, f"{out}/{name}.safetensors")


if mode == "grads":
    with open(f"{out}/valid-rank{dist.rank}.json", "w") as f:
        json.dump(trainer.validate(), f)
    trainer.train_step()
    grads = {n: p.grad.contiguous() for n, p in trainer.translator.named_parameters()
             if p.grad is not None}
    save_file(grads, f"{out}/grads-rank{dist.rank}.safetensors")
else:
    if dist.is_main:
        save("init")
    trainer.fit()
    save(f"rank{dist.rank}")
dist.barrier()
dist.close()
