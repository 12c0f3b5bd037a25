"""Image judge accuracy on blurred / down-sampled ground-truth test pictures (README figures).

    python recipes/shapes/judge_robustness.py
"""
import torch; torch.set_num_threads(1)
from PIL import Image, ImageFilter

from tmt.data.shapes import read_corpus
from tmt.data.shapes_world import attribute_accuracy
from tmt.eval.image_judge import ImageJudge

ex = read_corpus("work/shapes-20k", "test")
refs = [e.attributes for e in ex]
imgs = [Image.open(e.image).convert("RGB") for e in ex]
degrade = {
    "blur r=1": lambda im: im.filter(ImageFilter.GaussianBlur(1)),
    "blur r=1.5": lambda im: im.filter(ImageFilter.GaussianBlur(1.5)),
    "down-up x2": lambda im: im.resize((32, 32), Image.Resampling.BILINEAR).resize((64, 64), Image.Resampling.BILINEAR),
}
for name in ("image", "image-allpairs"):
    j = ImageJudge.load(f"checkpoints/judges/{name}")
    for d, f in degrade.items():
        acc = attribute_accuracy(j.predict([f(im) for im in imgs]), refs)
        print(name, d, " ".join(f"{k} {100*v:.2f}%" for k, v in acc.items()), flush=True)
