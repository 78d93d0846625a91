"""The illustrated Fashion-MNIST target domain of the offline transfer study."""

import numpy as np
import pytest
import torch

from lienzo.data.arrays import to_channels
from lienzo.tasks.classify.study import PALETTES, _rgb, illustrate, labelled_split


def _square(n=3):
    """n 12×12 photos: black, with a 6×6 garment whose brightness rises from left to right."""
    x = torch.zeros(n, 1, 12, 12, dtype=torch.uint8)
    x[:, 0, 3:9, 3:9] = torch.linspace(60, 250, 6).round().to(torch.uint8)
    return x


def test_illustration_by_hand():
    photos = _square()
    drawings = illustrate(photos, seed=3)
    assert drawings.shape == (3, 3, 12, 12) and drawings.dtype == torch.uint8
    draws = np.random.default_rng(3).random((3, 4))
    for i in range(3):
        colours = _rgb(PALETTES)[int(draws[i, 0] * len(PALETTES))]  # paper, ink, three fills
        d = drawings[i].permute(1, 2, 0)
        assert (d[:3] == colours[0]).all() and (d[:, 9:] == colours[0]).all()  # outside: paper
        ring = torch.zeros(12, 12, dtype=torch.bool)
        ring[3:9, 3:9] = True
        ring[4:8, 4:8] = False
        assert (d[ring] == colours[1]).all()  # the garment's boundary: ink
        inside = d[4:8, 4:8].reshape(-1, 3)
        fills = {tuple(c.tolist()) for c in colours[2:]}
        assert {tuple(c.tolist()) for c in inside} <= fills
        # brightness rises left to right, so the columns fall into tones in that order
        order = np.argsort(draws[i, 1:])
        assert tuple(d[5, 7].tolist()) == tuple(colours[2 + order[2]].tolist())
        assert tuple(d[5, 4].tolist()) == tuple(colours[2 + order[0]].tolist())


def test_illustration_is_deterministic_per_image(fashion_root):
    from lienzo.tasks import config_from_dict
    from lienzo.data.sources import load_source

    photos = load_source(config_from_dict({}).data)[1].images[:300]
    a, b = illustrate(photos), illustrate(photos[:100])
    assert torch.equal(a[:100], b) and torch.equal(a, illustrate(photos))
    assert not torch.equal(a, illustrate(photos, seed=1))
    # a different domain in grey: light paper where the photos are black
    grey = to_channels(a, 1).float()
    assert photos.float()[:, :, 0, 0].mean() < 5 and grey[:, :, 0, 0].mean() > 200


def test_labelled_split_counts():
    labels = torch.arange(10).repeat(30)
    chosen, rest = labelled_split(labels, 7, seed=0)
    assert torch.bincount(labels[chosen]).tolist() == [7] * 10
    assert len(rest) == 230 and not set(chosen.tolist()) & set(rest.tolist())
    assert torch.equal(chosen, labelled_split(labels, 7, seed=0)[0])


def test_to_channels_matches_pil():
    from PIL import Image

    x = torch.randint(0, 256, (4, 3, 5, 6), dtype=torch.uint8)
    want = np.stack([np.asarray(Image.fromarray(a.permute(1, 2, 0).numpy()).convert("L")) for a in x])
    assert np.array_equal(to_channels(x, 1)[:, 0].numpy(), want)
    assert torch.equal(to_channels(to_channels(x, 1), 3)[:, 2], to_channels(x, 1)[:, 0])


@pytest.mark.parametrize("arch, head", [("fastnet_s", "head"), ("resnet18", "fc"), ("vgg11", "fc8"), ("alexnet", "fc8")])
def test_study_groups_reinit_the_classifier_of_any_source(arch, head):
    from lienzo.models import create_model
    from lienzo.transfer.finetune import assign, parse_groups
    from lienzo.tasks.classify.study import finetune_groups, first_layers

    model = create_model(arch, num_classes=10, in_chans=1, input_size=(28, 28))
    groups = finetune_groups(model, first_layers(model), 0.01)
    assert groups[-1] == {"pattern": head, "lr": 0.01, "reinit": True}
    owner = assign(model, parse_groups(groups))  # every pattern matches something
    last = len(groups) - 1
    assert {n for n, i in owner.items() if i == last} == {f"{head}.weight", f"{head}.bias"}


def test_study_training_follows_no_progress(tmp_path, monkeypatch):
    import importlib

    from lienzo.tasks.classify.study import StudySettings, _target_training

    seen = []
    monkeypatch.setattr(importlib.import_module("lienzo.train"), "train", lambda cfg: seen.append(cfg) or tmp_path)
    for progress in (False, True):
        _target_training(StudySettings(finetune_epochs=2), tmp_path / "t.h5", 1, "fastnet_s", tmp_path, "x", None,
                         None, 0.01, progress)
    assert [cfg.trainer.progress for cfg in seen] == [False, True]
    assert all(cfg.trainer.max_epochs == 2 for cfg in seen)
