"""Several processes, one run: the epoch-seeded shuffle sharded across ranks, and one run folder agreed by
every rank however the processes were started (Lightning's launcher, torchrun, SLURM, by hand)."""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from lienzo import distributed
from lienzo.data.module import EpochSeededSampler
from lienzo.errors import RunError
from tests.helpers import write_idx_dataset

LAUNCH_VARS = ("TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT",
               "SLURM_NTASKS", "SLURM_PROCID", "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_JOB_NAME", "NODE_RANK",
               "LOCAL_RANK", distributed.ENV_DIR, distributed.ENV_OWNER)


def _permutation(n: int, seed: int, epoch: int) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()


# -- the sampler -------------------------------------------------------------------------------------
def test_sampler_alone_replays_the_single_process_order():
    """One process: each epoch is the (seed, epoch) permutation, unpadded, as before DDP support (old runs resume
    with the same order); set_epoch and start_epoch choose the epoch."""
    sampler = EpochSeededSampler(range(11), seed=3)
    assert [list(sampler) for _ in range(3)] == [_permutation(11, 3, e) for e in range(3)]
    assert len(sampler) == 11
    assert list(EpochSeededSampler(range(11), seed=3, start_epoch=2)) == _permutation(11, 3, 2)
    sampler.set_epoch(1)
    assert list(sampler) == _permutation(11, 3, 1)


@pytest.mark.parametrize("replicas", [2, 3])
def test_sampler_ranks_take_disjoint_shards_of_one_permutation(replicas):
    n, seed = 11, 5
    for epoch in (0, 4):
        shards = [list(EpochSeededSampler(range(n), seed=seed, start_epoch=epoch, num_replicas=replicas, rank=r))
                  for r in range(replicas)]
        order = _permutation(n, seed, epoch)
        padded = order + order[: -n % replicas]  # DistributedSampler's padding: the permutation's start again
        assert all(len(s) == len(padded) // replicas for s in shards)
        assert [shards[i % replicas][i // replicas] for i in range(len(padded))] == padded
        assert set(sum(shards, [])) == set(range(n))
        distinct = [set(s) for s in shards]
        overlap = sum(len(a & b) for i, a in enumerate(distinct) for b in distinct[i + 1:])
        assert overlap <= -n % replicas  # only the padding repeats


def test_sampler_is_one_lightning_keeps_under_ddp():
    """Lightning swaps in its own DistributedSampler unless the loader's sampler already is one."""
    from torch.utils.data import DistributedSampler

    assert isinstance(EpochSeededSampler(range(4)), DistributedSampler)


# -- agreeing on the run folder (the launchers' environments, one process playing each rank in turn) ----
@pytest.fixture
def launch_env():
    saved = dict(os.environ)
    for name in LAUNCH_VARS:
        os.environ.pop(name, None)
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


def _as(env, **values):
    for name in LAUNCH_VARS:
        env.pop(name, None)
    env.update({k: str(v) for k, v in values.items()})


@pytest.mark.parametrize("launcher", [
    lambda rank: dict(TORCHELASTIC_RUN_ID="none", RANK=rank, LOCAL_RANK=0, WORLD_SIZE=2, MASTER_ADDR="node0",
                      MASTER_PORT=29500, TORCHELASTIC_RESTART_COUNT=0),  # torchrun, one process per node
    lambda rank: dict(SLURM_NTASKS=2, SLURM_PROCID=rank, SLURM_JOB_ID=77, SLURM_STEP_ID=0, SLURM_JOB_NAME="train"),
    lambda rank: dict(NODE_RANK=rank, MASTER_ADDR="node0", MASTER_PORT=1234),  # Lightning's launcher on two nodes
], ids=["torchrun", "slurm", "lightning-nodes"])
def test_every_rank_gets_rank_zeros_fresh_folder(tmp_path, launch_env, launcher):
    (tmp_path / "tiny").mkdir()  # an earlier run: never reused
    _as(launch_env, **launcher(0))
    assert distributed.is_rank_zero()
    first = distributed.agree_on_run_dir(tmp_path, "tiny")
    _as(launch_env, **launcher(1))
    assert not distributed.is_rank_zero()
    second = distributed.agree_on_run_dir(tmp_path, "tiny", timeout=5)
    assert first == second == tmp_path / "tiny-2"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["tiny", "tiny-2"]
    markers = list(tmp_path.glob(".lienzo-job-*"))
    assert len(markers) == 1 and json.loads(markers[0].read_text())["run"] == "tiny-2"


def test_a_rank_without_rank_zero_waits_then_says_where_it_looked(tmp_path, launch_env):
    _as(launch_env, TORCHELASTIC_RUN_ID="job9", RANK=1, LOCAL_RANK=1, WORLD_SIZE=2, MASTER_ADDR="h", MASTER_PORT=5)
    with pytest.raises(RunError, match=r"rank 1 \(torchrun\) waited 0 s .*\.lienzo-job-torchrun-job9-h-5-\.json"):
        distributed.agree_on_run_dir(tmp_path, "tiny", timeout=0.3)
    assert list(tmp_path.iterdir()) == []  # created nothing


def test_lightning_launcher_children_inherit_only_from_their_parent(tmp_path, launch_env):
    run = distributed.agree_on_run_dir(tmp_path, "tiny")  # rank 0, before Lightning starts the others
    assert run == tmp_path / "tiny" and os.environ[distributed.ENV_DIR] == str(run)
    # a child started by the launcher: LOCAL_RANK > 0 and rank 0 (its parent) published the folder
    _as(launch_env, LOCAL_RANK=1, NODE_RANK=0, **{distributed.ENV_DIR: str(run), distributed.ENV_OWNER: os.getppid()})
    assert distributed.agree_on_run_dir(tmp_path, "tiny") == run
    # a plain subprocess of a program that trained in-process inherits the variables, but makes its own run
    _as(launch_env, **{distributed.ENV_DIR: str(run), distributed.ENV_OWNER: os.getppid()})
    assert distributed.agree_on_run_dir(tmp_path, "tiny") == tmp_path / "tiny-2"
    # ... and so does a child whose parent was another process
    _as(launch_env, LOCAL_RANK=1, MASTER_ADDR="h", MASTER_PORT=9,
        **{distributed.ENV_DIR: str(run), distributed.ENV_OWNER: os.getppid() + 1})
    with pytest.raises(RunError, match="waited"):
        distributed.agree_on_run_dir(tmp_path, "tiny", timeout=0.2)


def _trainer(rank_zero_dir, global_zero: bool):
    """What RunDirCheck needs of a DDP trainer: rank 0's value from broadcast, any() across ranks."""
    from types import SimpleNamespace

    strategy = SimpleNamespace(broadcast=lambda obj: str(rank_zero_dir),
                               reduce_boolean_decision=lambda decision, all=True: decision)
    return SimpleNamespace(strategy=strategy, is_global_zero=global_zero)


def test_run_dir_check_removes_the_marker_and_catches_a_stale_one(tmp_path, launch_env):
    torchrun = dict(TORCHELASTIC_RUN_ID="none", LOCAL_RANK=0, WORLD_SIZE=2, MASTER_ADDR="h", MASTER_PORT=29500)
    _as(launch_env, RANK=0, **torchrun)
    run = distributed.agree_on_run_dir(tmp_path, "tiny")
    marker, = tmp_path.glob(".lienzo-job-*")
    distributed.RunDirCheck(run).setup(_trainer(run, global_zero=True), None, "fit")
    assert not marker.exists() and run.is_dir()  # every rank has met: the marker has done its job
    # a marker left by a crashed job of the same name points a rank at another folder: an error, not a split run
    _as(launch_env, RANK=1, **torchrun)
    with pytest.raises(RunError, match=r"disagree on the run folder: rank 0 uses .*tiny-2, rank 1 \(torchrun\) .*tiny "
                                       r"\(a stale .*lienzo-job-torchrun-none-h-29500-\.json"):
        distributed.RunDirCheck(run).setup(_trainer(tmp_path / "tiny-2", global_zero=False), None, "fit")


# -- real processes ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_config(tmp_path: Path) -> list[str]:
    root = write_idx_dataset(tmp_path / "data", n_train=60, n_test=30)
    return [f"data.root={root}", "data.name=idx", "model.arch=lenet5", "data.batch_size=8", "data.val_fraction=0.2",
            "trainer.progress=false", f"run.dir={tmp_path / 'runs'}", "trainer.precision=32", "optim.lr=0.05",
            "optim.momentum=0.9", "data.augment=basic", "trainer.accelerator=cpu", "trainer.strategy=ddp"]


@pytest.mark.slow
def test_torchrun_on_two_nodes_makes_one_run_folder(tmp_path):
    """Two torchrun agents (two 'nodes', one process each) on this machine: the LOCAL_RANK 0 of node 1 must join
    rank 0's folder, not make its own, even when the configured name is taken."""
    args = _tiny_config(tmp_path) + ["trainer.devices=1", "trainer.num_nodes=2", "trainer.max_epochs=1", "run.name=tiny"]
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    config = tmp_path / "tiny.yaml"
    config.write_text("run: {seed: 0}\n")
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name in LAUNCH_VARS:
        env.pop(name, None)
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node),
         "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "lienzo", "train", str(config), *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for node in (0, 1)]
    outputs = [p.communicate(timeout=400)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["tiny", "tiny-2"]  # no tiny-3, no marker left behind
    assert list((runs / "tiny").iterdir()) == []
    run = runs / "tiny-2"
    for name in ("config.yaml", "metrics.json", "history.csv", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert "name: tiny-2" in (run / "config.yaml").read_text()


RESUME_SCRIPT = textwrap.dedent('''
    """Three trainings in one DDP job (Lightning's launcher, two CPU processes): 2 epochs; 1 epoch; that run
    resumed to 2 epochs. Every rank records the training indices it was served."""
    import json, os, sys
    from torch.utils.data import BatchSampler
    from lienzo import load_config, train

    out, args = sys.argv[1], sys.argv[2:]
    served = []
    original = BatchSampler.__iter__

    def recording(self):  # in the main process, which hands the index batches to the loader's workers
        for batch in original(self):
            if len(self.sampler) == 24:  # this rank's half of the training split (val: 6 a rank, test: 30)
                served.append(list(batch))
            yield batch

    BatchSampler.__iter__ = recording

    def dump(tag):
        with open(os.path.join(out, f"{tag}-rank{os.environ['LOCAL_RANK']}.json"), "w") as f:
            json.dump(served, f)
        served.clear()

    full = train(load_config(None, args + ["trainer.max_epochs=2", "run.name=full"]))
    dump("full")
    stopped = train(load_config(None, args + ["trainer.max_epochs=1", "run.name=stopped"]))
    dump("stopped")
    train(resume=stopped, overrides=["trainer.max_epochs=2"])
    dump("resumed")
''')


@pytest.mark.slow
def test_exact_resume_under_ddp_on_two_cpu_processes(tmp_path):
    """A DDP run stopped after epoch 1 and resumed to epoch 2 ends with the uninterrupted run's weights, history
    and metrics; every rank was served its own shard of the (seed, epoch) permutation, on resume too."""
    # A loader worker: its iterator draws the first indices when it is made, which Lightning does before it
    # calls set_epoch when a run resumes.
    args = _tiny_config(tmp_path) + ["trainer.devices=2", "run.seed=4", "data.num_workers=1"]
    script = tmp_path / "resume_ddp.py"
    script.write_text(RESUME_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name in LAUNCH_VARS:
        env.pop(name, None)
    done = subprocess.run([sys.executable, str(script), str(tmp_path), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    served = {(tag, rank): json.loads((tmp_path / f"{tag}-rank{rank}.json").read_text())
              for tag in ("full", "stopped", "resumed") for rank in (0, 1)}
    batches = 3  # 48 training images, 24 per rank, 8 per batch
    for epoch in (0, 1):
        order = _permutation(48, 4, epoch)
        for rank in (0, 1):
            shard = sum(served["full", rank][epoch * batches : (epoch + 1) * batches], [])
            assert shard == order[rank::2], (epoch, rank)
    for rank in (0, 1):
        assert served["stopped", rank] == served["full", rank][:batches]
        assert served["resumed", rank] == served["full", rank][batches:]  # epoch 2 replayed, on each rank

    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["full", "stopped"]
    full = torch.load(runs / "full" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    resumed = torch.load(runs / "stopped" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert full["epoch"] == resumed["epoch"] == 1
    for key, value in full["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    strip = lambda path: [row.rsplit(",", 1)[0] for row in path.read_text().splitlines()]  # seconds differ
    assert strip(runs / "full" / "history.csv") == strip(runs / "stopped" / "history.csv")
    a, b = (json.loads((runs / name / "metrics.json").read_text()) for name in ("full", "stopped"))
    for split in ("val", "test"):
        assert a[split]["top1"] == b[split]["top1"] and a[split]["confusion"] == b[split]["confusion"]
        assert a[split]["cross_entropy"] == pytest.approx(b[split]["cross_entropy"], abs=1e-6)


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and every process it started (they share its process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # every member has exited already
        pass
    process.wait()


@pytest.fixture
def lienzo_cli(tmp_path):
    """Starts `python -m lienzo ARGS` in a process group of its own, output to tmp_path/<name>.log (a file
    cannot fill up as a pipe can); at teardown every group started is killed, the DDP ranks Lightning's
    launcher started and their loader workers included, whatever the test did."""
    started = []

    def start(name: str, *args: str) -> subprocess.Popen:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        for var in LAUNCH_VARS:
            env.pop(var, None)
        with open(tmp_path / f"{name}.log", "w") as out:
            process = subprocess.Popen([sys.executable, "-m", "lienzo", *args], cwd=tmp_path, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        process.log = tmp_path / f"{name}.log"
        started.append(process)
        return process

    yield start
    for process in started:
        _kill_group(process)


def _succeeds(process: subprocess.Popen) -> None:
    """Wait for a training to end; it must have succeeded."""
    code = process.wait(timeout=240)
    assert code == 0, process.log.read_text()[-3000:]


def _saved_epoch(checkpoint: Path) -> int | None:
    """The 0-based epoch a checkpoint was saved at; None while there is none (they are written atomically)."""
    if not checkpoint.is_file():
        return None
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["epoch"]


def _steps_done(log: Path, epoch: int) -> tuple[int, int]:
    """(steps done, steps) of `epoch` on rank 0's progress bar (0-based epochs, redrawn every 25 steps)."""
    bars = re.findall(rf"Epoch {epoch}:[^\r\n]*?\| *(\d+)/(\d+)", log.read_text(errors="replace"))
    return tuple(map(int, bars[-1])) if bars else (0, 0)


@pytest.mark.slow
def test_ddp_run_killed_in_epoch_two_resumes_to_the_uninterrupted_result(tmp_path, lienzo_cli):
    """Two CPU processes (gloo) SIGKILLed part-way through epoch 2, after epoch 1's last.ckpt, then
    `lienzo train --resume` (two processes again): the same weights, history and metrics as a run never killed.
    Unlike the test above, the resumed ranks are fresh processes: nothing survives in memory, every rank's
    shuffle must come back from (seed, epoch) and the rest from last.ckpt."""
    # 800 training images in batches of 4: 100 steps a rank, so epoch 2 outlasts the kill by ~75 steps.
    # A loader worker, as above: its iterator draws indices before Lightning calls set_epoch on resume.
    # Watching val_top1, which epoch 2 does not improve here: last.ckpt must still be epoch 2's.
    args = _tiny_config(tmp_path) + ["trainer.devices=2", "run.seed=4", "data.num_workers=1", "data.batch_size=4",
                                     "optim.lr=0.01", "optim.schedule=cosine", "trainer.max_epochs=2",
                                     "trainer.monitor=val_top1"]
    write_idx_dataset(tmp_path / "data", n_train=1000, n_test=30)  # over the config's 60 images
    config = tmp_path / "tiny.yaml"
    config.write_text("run: {seed: 0}\n")
    runs = tmp_path / "runs"
    last = runs / "killed" / "checkpoints" / "last.ckpt"
    # The uninterrupted run beside the one to kill: the two start up (most of the time) at once.
    full = lienzo_cli("full", "train", str(config), *args, "run.name=full")
    victim = lienzo_cli("killed", "train", str(config), *args, "run.name=killed", "trainer.progress=true")
    deadline = time.monotonic() + 180
    while _saved_epoch(last) is None or _steps_done(victim.log, 1)[0] == 0:  # epoch 2 has made steps
        assert victim.poll() is None, victim.log.read_text()[-3000:]
        assert time.monotonic() < deadline, "epoch 2 did not start within 180 s"
        time.sleep(0.01)
    _kill_group(victim)
    # killed after epoch 1's checkpoint and before epoch 2's: the run really was cut inside epoch 2
    assert _saved_epoch(last) == 0, "the run got past epoch 2 before it was killed: make epoch 2 longer"
    done, steps = _steps_done(victim.log, 1)
    assert steps == 100 and 0 < done < steps
    assert not (runs / "killed" / "metrics.json").exists()
    assert len((runs / "killed" / "history.csv").read_text().splitlines()) == 2  # header, epoch 1
    _succeeds(full)

    _succeeds(lienzo_cli("resumed", "train", "--resume", str(runs / "killed")))

    assert sorted(p.name for p in runs.iterdir()) == ["full", "killed"]
    strip = lambda path: [row.rsplit(",", 1)[0] for row in path.read_text().splitlines()]  # seconds differ
    history = strip(runs / "full" / "history.csv")
    assert len(history) == 3 and history == strip(runs / "killed" / "history.csv")
    for name in ("full", "killed"):
        assert _saved_epoch(runs / name / "checkpoints" / "last.ckpt") == 1, f"{name}: last.ckpt is not epoch 2's"
    a, b = (torch.load(runs / name / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
            for name in ("full", "killed"))
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key
    a, b = (json.loads((runs / name / "metrics.json").read_text()) for name in ("full", "killed"))
    for split in ("val", "test"):
        assert a[split]["top1"] == b[split]["top1"] and a[split]["confusion"] == b[split]["confusion"]
        assert a[split]["cross_entropy"] == pytest.approx(b[split]["cross_entropy"], abs=1e-6)
    # what made last.ckpt worth checking: best.ckpt stayed at epoch 1
    with open(runs / "full" / "history.csv") as f:
        top1 = [float(row["val_top1"]) for row in csv.DictReader(f)]
    assert top1[1] <= top1[0], "epoch 2 improved val_top1: this no longer checks a last.ckpt that is not best.ckpt"
    for name in ("full", "killed"):
        assert _saved_epoch(runs / name / "checkpoints" / "best.ckpt") == 0, name
