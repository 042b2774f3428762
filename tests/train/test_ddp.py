"""DDP through torchrun: 2 CPU processes (gloo) give the single-process result for the same global batch.

Each rank takes half of every global batch; DDP averages the two mean gradients, which equals the
single-process mean gradient. Only the summation order differs, so we allow 1e-5 (float32) on the weights
and 1e-6 on the metrics.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch

from nnlab.train.checkpoint import load_checkpoint

ARGS = ["train", "mlp", "--backend", "torch", "--batch-size", "20", "--epochs", "3", "--progress", "off", "--seed", "5"]


# Four fresh interpreters (the single run, torchrun's agent, two workers), each importing torch: on a loaded 2-core
# machine that alone can take minutes, so the limits are generous (a hang still ends); torchrun's rendezvous store
# waits as long (its default read timeout, 60 s, was once reached under load)
SUBPROCESS_LIMIT_S = 900


@pytest.mark.timeout(2 * SUBPROCESS_LIMIT_S + 120)
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_two_process_gloo_matches_single_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "nnlab", *ARGS, "--out", str(single)], capture_output=True, text=True, env=env,
                       timeout=SUBPROCESS_LIMIT_S)
    assert r.returncode == 0, r.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--max-restarts", "0",
                "--rdzv-conf", f"read_timeout={SUBPROCESS_LIMIT_S}"]
    r = subprocess.run([*torchrun, "-m", "nnlab", *ARGS, "--out", str(multi)], capture_output=True, text=True, env=env,
                       timeout=SUBPROCESS_LIMIT_S)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("run folder:") == 1  # only rank 0 reports and writes
    a, b = load_checkpoint(single)["learner"]["model"], load_checkpoint(multi)["learner"]["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5)
    ra = list(csv.DictReader(open(single / "metrics.csv")))
    rb = list(csv.DictReader(open(multi / "metrics.csv")))
    assert len(ra) == len(rb) == 3
    for x, y in zip(ra, rb):
        for col in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert float(x[col]) == pytest.approx(float(y[col]), abs=1e-6), col


@pytest.fixture
def gloo_world_of_one(tmp_path):
    """One in-process gloo group (world of 1), standing for a rank's group; destroyed afterwards if a test left it."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield dist
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_a_finished_run_destroys_its_process_group(tmp_path, gloo_world_of_one):
    """After a successful fit under torchrun each rank destroys its process group: exiting with gloo's threads alive
    can abort the process at interpreter shutdown, which torchrun reports as a failed run. Here one in-process gloo
    group (world of 1) stands for the rank's group; the run itself is an ordinary NumPy run."""
    from nnlab.experiments.common import fit_in_run_folder
    from nnlab.experiments.mlp import setup_toy, toy_configs
    from nnlab.train.distributed import DistInfo

    cfg = toy_configs("best", model={"backend": "numpy"}, train={"epochs": 1, "progress": "off"})
    learner, data, _ = setup_toy(cfg["model"], cfg["data"], cfg["optim"], cfg["schedule"], cfg["train"])
    s = fit_in_run_folder(learner, data, cfg["train"], {}, out=tmp_path / "run", resume=False, dry_run=False,
                          dist=DistInfo(rank=0, world_size=2), desc="ddp")
    assert s["steps"] > 0 and (tmp_path / "run" / "summary.json").exists()
    assert not gloo_world_of_one.is_initialized()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_a_finished_torch_run_leaves_its_ddp_wrapper_before_the_group_goes(tmp_path, gloo_world_of_one):
    """The DDP wrapper's reducer holds the process group: ``destroy_process_group`` alone only unregisters it, and its
    gloo threads then die at interpreter exit, which aborted 8 of 158 two-process runs. After a successful fit the
    learner's model leaves the wrapper, then the group is destroyed. One in-process gloo group (world of 1) stands
    for the rank's group."""
    from torch.nn.parallel import DistributedDataParallel

    from nnlab.data.toy import make_toy
    from nnlab.experiments.common import fit_in_run_folder
    from nnlab.experiments.mlp import build_mlp_learner, toy_configs
    from nnlab.train.distributed import DistInfo
    from nnlab.train.loop import TaskData
    from nnlab.train.sources import ArraySource, EvalSet

    cfg = toy_configs("best", model={"backend": "torch"}, train={"epochs": 1, "progress": "off", "device": "cpu"})
    splits = make_toy(cfg["data"], 0)
    (x, y), (xt, yt) = splits.train, splits.test
    as_t = lambda a, b: (torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b))  # noqa: E731
    info = DistInfo(rank=0, world_size=2)                # as one rank of a two-process run sees itself
    src = ArraySource(*as_t(x, y), cfg["train"].batch_size, 0)
    learner = build_mlp_learner(cfg["model"], 2, 2, cfg["optim"], cfg["schedule"], cfg["train"], src.steps_per_epoch,
                                torch.device("cpu"), info)
    assert isinstance(learner.net, DistributedDataParallel)
    s = fit_in_run_folder(learner, TaskData(train=src, test=EvalSet(*as_t(xt, yt))), cfg["train"], {},
                          out=tmp_path / "run", resume=False, dry_run=False, dist=info, desc="ddp")
    assert s["steps"] > 0
    assert learner.net is learner.model and not gloo_world_of_one.is_initialized()
