"""ResNet-50 feature extraction at 224×224 on this CPU: `lienzo features extract`'s path (HDF5 writing
included) against a plain torchvision inference loop in fp32 and in bf16 + channels_last, side by side.

    .venv/bin/python benchmarks/extract_speed.py [N_IMAGES]
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from lienzo.tasks import config_from_dict
from lienzo.data.hdf5 import write_hdf5
from lienzo.transfer.backbones import IMAGENET_MEAN, IMAGENET_STD, Backbone, Preprocess
from lienzo.transfer.features import extract_features

n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
batch = 32
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)
model = torchvision.models.resnet50(weights=None).eval()
model.fc = torch.nn.Identity()  # the pooled 2048-d features, as `--layer penultimate`
mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
x_all = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def plain(bf16: bool) -> float:
    m = model.to(memory_format=torch.channels_last) if bf16 else model.to(memory_format=torch.contiguous_format)
    out = []
    start = time.perf_counter()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, n, batch):
            x = (x_all[i : i + batch].float() / 255 - mean) / std
            if bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(m(x).float())
    torch.cat(out)
    return n / (time.perf_counter() - start)


with tempfile.TemporaryDirectory() as tmp:
    source = Path(tmp) / "images.h5"
    write_hdf5(source, images, np.zeros(n, dtype=np.int64), ["x"])
    cfg = config_from_dict({"data": {"name": "hdf5", "root": str(source)}}).data
    backbone = Backbone("resnet50", torchvision.models.resnet50(weights=None).eval(), "random",
                        Preprocess(IMAGENET_MEAN, IMAGENET_STD, 3, 224, 224), None, "resnet")
    backbone.model.load_state_dict({k: v for k, v in model.state_dict().items()}, strict=False)
    with torch.inference_mode():  # warm-up of every path
        model(torch.zeros(2, 3, 224, 224))
    results: dict[str, float] = {}
    from lienzo.data.sources import load_source  # the source read is outside the timing, as for the loops

    train, _ = load_source(cfg)
    # The decoded source goes in, as the loops get theirs: what is timed is preprocessing, the network,
    # and writing the HDF5 file. Two rounds, alternating, best of each: this shared host's speed drifts by ±10 % from minute to minute.
    for round_ in range(2):
        for name, fn in (("plain fp32", lambda: plain(False)), ("plain bf16+channels_last", lambda: plain(True))):
            results[name] = max(results.get(name, 0.0), fn())
        out = Path(tmp) / f"f{round_}.h5"
        start = time.perf_counter()
        extract_features(backbone, "penultimate", {"train": train}, out, batch_size=batch, progress=False)
        name = "lienzo features extract (auto, HDF5 written)"
        results[name] = max(results.get(name, 0.0), n / (time.perf_counter() - start))
best = max(v for k, v in results.items() if k.startswith("plain"))
for name, value in results.items():
    print(f"{name:<48} {value:8.1f} images/s")
print(f"lienzo / best plain loop: {results['lienzo features extract (auto, HDF5 written)'] / best:.2f}x")
