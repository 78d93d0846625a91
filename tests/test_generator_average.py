"""The GAN generator's moving average, torch's AveragedModel: the numbers of the hand-written average it
replaced (weights and batch-norm statistics, from the generator as built), and checkpoints that held the
hand-written one's layout still load."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lienzo import load_config
from lienzo.evaluate import load_run
from lienzo.tasks import get_task

DECAY = 0.8


def _module():
    cfg = load_config(None, ["task=generate", "model.maps=8", "model.z_dim=16", "data.batch_size=4",
                             "gan.critic_steps=2", "gan.generator_batch=6", "gan.grid=4", f"gan.ema_decay={DECAY}"])
    torch.manual_seed(1)
    return cfg, get_task("generate").build_module(cfg, {"input_shape": [3, 8, 8]})


def _train(module, steps: int, monkeypatch) -> list[dict]:
    """`steps` training steps of the module (its own training_step: the average updates where it always did);
    the raw generator's state after each."""
    opt_g = torch.optim.Adam(module.generator.parameters(), lr=0.05)
    opt_c = torch.optim.Adam(module.critic.parameters(), lr=0.05)
    monkeypatch.setattr(module, "optimizers", lambda: (opt_g, SimpleNamespace(optimizer=opt_c)))
    monkeypatch.setattr(module, "manual_backward", lambda loss: loss.backward())
    monkeypatch.setattr(module, "lr_schedulers", lambda: None)
    monkeypatch.setattr(module, "log", lambda *a, **k: None)
    module.train()
    states = []
    for step in range(steps):
        module.training_step(torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(step)) * 2 - 1, step)
        states.append({k: v.clone() for k, v in module.generator.state_dict().items()})
    return states


def test_the_average_is_the_hand_written_one_with_batch_norm_statistics(monkeypatch):
    cfg, module = _module()
    expected = {k: v.clone() for k, v in module.generator.state_dict().items()}  # the average starts here
    raw_states = _train(module, 4, monkeypatch)
    for raw in raw_states:  # ema = decay·ema + (1 − decay)·w after every step, batch-norm statistics too
        expected = {k: (DECAY * expected[k] + (1 - DECAY) * w if w.is_floating_point() else w.clone())
                    for k, w in raw.items()}
    average = module.sampler.state_dict()
    assert average.keys() == expected.keys()
    assert any(k.endswith("running_var") for k in expected) and any(k.endswith("num_batches_tracked") for k in expected)
    for name, value in expected.items():
        if value.is_floating_point():
            assert torch.allclose(average[name], value, atol=1e-6), name
            assert not torch.allclose(average[name], raw_states[-1][name], atol=1e-4), name  # it is not the raw
        else:  # batch norm's step counter: the generator's (3 passes a step: 2 critic steps' fakes, its own)
            assert torch.equal(average[name], value) and value.item() == 12, name
    assert module.generator_ema.n_averaged.item() == 5  # the generator as built, and 4 steps
    assert not any(p.requires_grad for p in module.generator_ema.parameters())
    z = module.noise(5, seed=3)
    assert torch.equal(module.sample(z), module.generator_ema.module.eval()(z))  # samples come from the average
    assert not torch.allclose(module.sample(z), module.generator.eval()(z), atol=1e-3)


@pytest.mark.parametrize("stamp", [None, 2])  # before format stamps, and the last format of the plain copy
def test_a_checkpoint_of_the_hand_written_average_loads(tmp_path, monkeypatch, stamp):
    cfg, module = _module()
    _train(module, 2, monkeypatch)
    # the hand-written average was a deep copy of the generator: its tensors under the generator's names
    old = {k: v for k, v in module.state_dict().items() if not k.startswith("generator_ema.")}
    old.update({f"generator_ema.{k}": v for k, v in module.sampler.state_dict().items()})
    checkpoint = {"hyper_parameters": {"config": cfg.to_dict(), "info": {"input_shape": [3, 8, 8]}},
                  "state_dict": old, **({"lienzo_format": stamp} if stamp else {})}
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    torch.save(checkpoint, tmp_path / "run" / "checkpoints" / "best.ckpt")

    loaded = load_run(tmp_path / "run").module
    for name, value in module.state_dict().items():
        if name != "generator_ema.n_averaged":
            assert torch.equal(loaded.state_dict()[name], value), name
    z = module.noise(6, seed=5)
    assert torch.equal(loaded.sample(z), module.sample(z))
    # and it goes on averaging (a count of 0 would make the next update a copy of the generator)
    for m in (module, loaded):
        m.generator_ema.update_parameters(m.generator)
    for name, value in module.sampler.state_dict().items():
        assert torch.equal(loaded.sampler.state_dict()[name], value), name
