"""Schedules and Lookahead (lienzo.optimizers): the warm-up-then-decay schedule built from torch's LinearLR and
SequentialLR gives the hand-written schedule's rate at every step and resumes; lienzo keeps its own Lookahead
because timm's skips the first move of the slow weights."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
import torch

from lienzo import load_config, train
from lienzo.optimizers import Lookahead, build_scheduler
from tests.helpers import write_idx_dataset


def hand_written_linear(step: int, warmup: int, total: int) -> float:
    """The factor of the LambdaLR that `optim.schedule=linear` was until torch's schedulers replaced it."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(total - warmup, 1))


def _rates(schedule: str, total: int, fraction: float, steps: int, state: dict | None = None,
           skip: int = 0) -> list[list[float]]:
    """The rate of both parameter groups at each of `steps` optimizer steps (each followed by a scheduler step,
    as the tasks step them). With `state`, the optimizer and schedule resume from it after `skip` steps."""
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD([{"params": params[:1], "lr": 0.5}, {"params": params[1:], "lr": 0.05}], lr=0.5)
    cfg = SimpleNamespace(schedule=schedule, warmup_fraction=fraction, name="sgd", momentum=0.0)
    scheduler, interval = build_scheduler(optimizer, cfg, total)
    assert interval == "step"
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    rates = []
    for _ in range(skip, steps):
        rates.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    _rates.last = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    return rates


@pytest.mark.parametrize("total, fraction, warmup", [
    (6, 1 / 3, 2),      # the docstring's example: 0.5, 1, 1, 0.75, 0.5, 0.25, 0
    (10, 0.25, 2),
    (7, 0.0, 1),        # no warm-up asked for: one step at the full rate before the decay starts
    (2, 0.5, 1),
    (50, 0.1, 5),
    (10, 0.99, 9),      # one step of decay
    (997, 0.25, 249),   # the fraction rounds down
])
def test_linear_schedule_is_the_hand_written_one_at_every_step(total, fraction, warmup):
    assert max(int(fraction * total), 1) == warmup
    rates = _rates("linear", total, fraction, total + 3)  # and three steps past the end: 0
    for step, (high, low) in enumerate(rates):
        factor = hand_written_linear(step, warmup, total)
        assert high == pytest.approx(0.5 * factor, rel=1e-12, abs=1e-15), step
        assert low == pytest.approx(0.05 * factor, rel=1e-12, abs=1e-15), step
    assert rates[warmup - 1][0] == pytest.approx(0.5) == rates[warmup][0]  # the peak at both sides of the milestone
    assert rates[total][0] == 0.0 and rates[total - 1][0] > 0


def test_warm_up_over_the_whole_run_differs_only_after_the_last_step():
    # warmup_fraction=1: no decay phase. Every trained step has the hand-written rate; after the last one (the
    # rate no step uses, the last one history.csv shows) the hand-written schedule dropped to 0 and torch's
    # decay starts from the full rate, one step later.
    total = 5
    rates = _rates("linear", total, 1.0, total + 2)
    assert [r[0] for r in rates[:total]] == pytest.approx([0.5 * hand_written_linear(s, total, total)
                                                           for s in range(total)], rel=1e-12)
    assert [r[0] for r in rates[total:]] == [pytest.approx(0.5), 0.0]


@pytest.mark.parametrize("schedule, fraction", [("linear", 0.25), ("linear", 0.0), ("onecycle", 0.25),
                                                ("cosine", 0.0)])
def test_a_schedule_resumes_where_it_stopped(schedule, fraction):
    total = 12
    straight = _rates(schedule, total, fraction, total)
    for cut in (1, 3, 7):  # inside the warm-up, at its end, in the decay
        _rates(schedule, total, fraction, cut)
        resumed = _rates(schedule, total, fraction, total, state=_rates.last, skip=cut)
        assert resumed == straight[cut:], cut  # the same floating-point operations: the same numbers


# -- Lookahead ------------------------------------------------------------------------------------------

def _quadratic_steps(steps: int, optimizer_of, lookahead_of=None) -> list[torch.Tensor]:
    """SGD (lr 0.1) on f(w) = ½‖w − t‖² from w = 0: each plain step moves w a tenth of the way to t."""
    target = torch.tensor([3.0, -1.0])
    w = torch.nn.Parameter(torch.zeros(2))
    optimizer = optimizer_of(torch.optim.SGD([w], lr=0.1))
    lookahead = lookahead_of([w]) if lookahead_of else None
    weights = []
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * ((w - target) ** 2).sum()).backward()
        optimizer.step()
        if lookahead is not None:
            lookahead.step()
        weights.append(w.detach().clone())
    return weights


def test_timm_lookahead_skips_the_first_slow_step_so_lienzo_keeps_its_own():
    """Lookahead (Zhang et al. 2019, Algorithm 1) starts the slow weights at the initial weights φ0 = θ0, so the
    first sync after k steps moves them alpha of the way to θk and restarts from there. timm.optim.Lookahead
    creates its slow weights lazily at that first sync, from θk: the first sync moves nothing, and every later
    weight differs. lienzo's Lookahead keeps the paper's (and its own earlier runs') numbers."""
    from timm.optim import Lookahead as TimmLookahead

    k, alpha, steps = 3, 0.5, 7
    ours = _quadratic_steps(steps, lambda opt: opt, lambda params: Lookahead(params, k=k, alpha=alpha))
    timms = _quadratic_steps(steps, lambda opt: TimmLookahead(opt, alpha=alpha, k=k))
    target, fast = torch.tensor([3.0, -1.0]), [torch.zeros(2)]
    for _ in range(k):
        fast.append(fast[-1] + 0.1 * (target - fast[-1]))
    theta0, theta_k = fast[0], fast[k]
    assert torch.allclose(ours[k - 1], theta0 + alpha * (theta_k - theta0), atol=1e-6)  # [0.8130, -0.2710]
    assert torch.allclose(timms[k - 1], theta_k, atol=1e-6)                            # [0.8130·2, ...]: no move
    assert torch.allclose(ours[0], timms[0]) and torch.allclose(ours[1], timms[1])  # the same before the sync
    assert all(not torch.allclose(a, b, atol=1e-3) for a, b in zip(ours[k - 1:], timms[k - 1:]))


@pytest.fixture(scope="module")
def lookahead_runs(tmp_path_factory):
    """A classify run of 2 epochs with Lookahead and the linear schedule, straight, and cut off in its 6th step
    (the checkpoint is the one after epoch 1) then resumed. 60 images in batches of 16: 4 steps an epoch, so
    the k=3 syncs fall inside an epoch (step 3) and after the resume (step 6, counted across it)."""
    from lienzo.tasks.classify.module import ClassifyModule

    tmp = tmp_path_factory.mktemp("lookahead")
    root = write_idx_dataset(tmp / "data", n_train=60, n_test=30)

    def cfg(name: str):
        return load_config("configs/fashion_basenet.yaml", [
            f"data.root={root}", "data.batch_size=16", "data.val_fraction=0", "trainer.max_epochs=2",
            "trainer.progress=false", f"run.dir={tmp / 'runs'}", f"run.name={name}", "optim.name=sgd",
            "optim.lr=0.1", "optim.momentum=0.9", "optim.schedule=linear", "optim.warmup_fraction=0.25",
            "optim.lookahead_steps=3", "optim.lookahead_alpha=0.5", "trainer.monitor=train_loss"])

    straight = train(cfg("straight"))
    step, calls = ClassifyModule.training_step, []

    def cut(module, batch, batch_idx):
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("power cut")
        return step(module, batch, batch_idx)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ClassifyModule, "training_step", cut)
        with pytest.raises(RuntimeError, match="power cut"):
            train(cfg("cut"))
    assert _last(tmp / "runs" / "cut")["global_step"] == 4
    return straight, train(resume=tmp / "runs" / "cut")


def _last(run) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def test_lookahead_and_the_schedule_resume_from_a_checkpoint(lookahead_runs):
    straight, resumed = (_last(run) for run in lookahead_runs)
    assert straight["global_step"] == resumed["global_step"] == 8
    assert straight["lookahead"]["steps"] == resumed["lookahead"]["steps"] == 8
    for a, b in zip(straight["lookahead"]["slow"], resumed["lookahead"]["slow"]):
        assert torch.allclose(a, b, atol=1e-6)
    for name, value in straight["state_dict"].items():
        assert torch.allclose(value.float(), resumed["state_dict"][name].float(), atol=1e-6), name
    assert straight["lr_schedulers"][0]["last_epoch"] == resumed["lr_schedulers"][0]["last_epoch"] == 8
    # 8 steps, warm-up 2: the rate after each epoch's last step is the hand-written schedule's at step 4 and 8
    rates = []
    for run in lookahead_runs:
        with open(run / "history.csv") as f:
            rates.append([float(row["lr"]) for row in csv.DictReader(f)])
    assert rates[0] == rates[1] == pytest.approx([0.1 * hand_written_linear(s, 2, 8) for s in (4, 8)])


@pytest.mark.parametrize("total, warmup", [(1, 0.25), (2, 0.5), (3, 0.25), (4, 0.25), (10, 0.1), (10, 1.0), (10, 0.0)])
def test_onecycle_never_divides_by_an_empty_phase(total, warmup):
    """4 steps at 0.25 or a whole-run warm-up left OneCycleLR a phase of no steps (ZeroDivisionError)."""
    from types import SimpleNamespace

    from lienzo.optimizers import build_scheduler

    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    cfg = SimpleNamespace(schedule="onecycle", warmup_fraction=warmup, name="sgd", momentum=0.0)
    scheduler, interval = build_scheduler(optimizer, cfg, total)
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])  # the rate this step uses
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    assert interval == ("none" if total < 3 else "step")
    if total >= 3:  # up to optim.lr, then down to a small fraction of it
        assert max(rates) == pytest.approx(0.1) and rates[0] < 0.1 and rates[-1] < 0.01
