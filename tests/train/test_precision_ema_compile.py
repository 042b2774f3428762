"""Behaviour of the loop's options that change numbers, not shapes: EMA of the weights, ``torch.compile``, bf16
autocast (``--amp``, ``nnlab.train.precision``), early stopping without a validation split, flip test-time
augmentation and no weight decay on 1-D parameters. Each is checked against a result worked out by hand or
against the plain (eager, fp32, no-option) run, on the CPU, in a few steps.
"""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch
from torch import nn

from nnlab.cli import main
from nnlab.errors import ConfigError
from nnlab.train import precision
from nnlab.train.config import OptimConfig, ScheduleConfig, TrainConfig
from nnlab.train.learners import TorchLearner, build_torch_optimizer, param_groups
from nnlab.train.loop import TaskData, fit
from nnlab.train.sources import ArraySource, EvalSet

CPU = torch.device("cpu")


def _learner(model, *, optim=None, num_classes=3, total_steps=100, **train) -> TorchLearner:
    train = {"device": "cpu", "progress": "off", **train}
    return TorchLearner(model, optim or OptimConfig(optimizer="sgd", lr=0.1), ScheduleConfig(), TrainConfig(**train),
                        total_steps=total_steps, device=CPU, num_classes=num_classes)


def _batches(n_steps: int, batch: int = 8, d: int = 4, c: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, d, generator=g), torch.randint(0, c, (batch,), generator=g)) for _ in range(n_steps)]


def _mlp(seed: int = 0, d: int = 4, c: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, c))


# -- (a) EMA -----------------------------------------------------------------------------------------
def test_ema_is_the_lerp_of_the_raw_weights_and_evaluation_uses_it():
    d = 0.9
    learner = _learner(_mlp(), ema_decay=d)
    ema = {k: v.detach().clone() for k, v in learner.model.named_parameters()}  # EMA_0 = the initial weights
    for step, (x, y) in enumerate(_batches(5)):
        learner.train_step(x, y, step)
        for k, w in learner.model.named_parameters():  # EMA_k = d EMA_(k-1) + (1 - d) W_k, after each update
            ema[k] = d * ema[k] + (1 - d) * w.detach()
    got, raw = dict(learner.ema.named_parameters()), dict(learner.model.named_parameters())
    for k, v in ema.items():
        torch.testing.assert_close(got[k], v, rtol=1e-5, atol=1e-6)
    assert sum(not torch.allclose(got[k], raw[k]) for k in raw) >= 4  # an average, not a copy (the bias before
    # BatchNorm gets no gradient, so it stays at its initial value in both)
    for (k, be), bs in zip(learner.ema.named_buffers(), learner.model.buffers()):  # BatchNorm statistics: copied
        assert torch.equal(be, bs), k

    x, y = _batches(1, batch=50, seed=1)[0]
    ev = learner.evaluate(EvalSet(x, y), 1000)
    with torch.no_grad():
        loss_ema = nn.functional.cross_entropy(learner.ema.eval()(x), y, reduction="sum").item()
        loss_raw = nn.functional.cross_entropy(learner.model.eval()(x), y, reduction="sum").item()
    assert ev.loss_sum == pytest.approx(loss_ema, rel=1e-5) and abs(loss_ema - loss_raw) > 1e-3
    torch.testing.assert_close(learner.predict_proba(x), torch.softmax(learner.ema(x), 1))


# -- (b) torch.compile -------------------------------------------------------------------------------
def _compiler_toolchain_missing() -> str | None:
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "no C++ compiler: torch.compile's CPU backend (inductor) cannot build its kernels here"
    return None


@pytest.mark.skipif(_compiler_toolchain_missing() is not None, reason=str(_compiler_toolchain_missing()))
def test_compiled_model_trains_like_the_eager_one(monkeypatch):
    import torch._dynamo
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config, "compile_threads", 1)  # no pool of compile workers
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))  # tiny MLP, no BatchNorm: short compile
    learners = {mode: _learner(copy.deepcopy(model), compile=mode == "compiled") for mode in ("eager", "compiled")}
    batches = _batches(4)
    for mode, learner in learners.items():
        try:
            for step, (x, y) in enumerate(batches):
                learner.train_step(x, y, step)
        except torch._dynamo.exc.BackendCompilerFailed as e:  # e.g. a compiler without the needed headers
            pytest.skip(f"torch.compile's CPU backend failed to build here: {str(e).splitlines()[0][:200]}")
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # the steps really ran a compiled graph
    eager, compiled = (dict(learners[m].model.named_parameters()) for m in ("eager", "compiled"))
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-4, atol=1e-5)
    assert learners["compiled"].train_stats()[0] == pytest.approx(learners["eager"].train_stats()[0], rel=1e-5)
    torch._dynamo.reset()


# -- (c) bf16 autocast ---------------------------------------------------------------------------------
def test_resolve_precision_cpu_env_override_and_detection(monkeypatch):
    monkeypatch.setenv("NNLAB_CPU_BF16", "1")
    assert precision.resolve_precision(True, CPU) == precision.Precision(True, "bf16-autocast")
    assert precision.resolve_precision(False, CPU) == precision.Precision(False, "fp32")
    monkeypatch.setenv("NNLAB_CPU_BF16", "0")
    p = precision.resolve_precision(True, CPU)
    assert (p.autocast, p.name) == (False, "fp32") and "no native bf16" in p.note
    assert precision.resolve_precision(False, CPU).note is None  # no --amp, nothing to say
    mps = precision.resolve_precision(True, torch.device("mps"))
    assert (mps.autocast, mps.name) == (False, "fp32") and "mps" in mps.note
    # without the override: the /proc/cpuinfo flags decide
    monkeypatch.delenv("NNLAB_CPU_BF16")
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert precision.resolve_precision(True, CPU).autocast
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert precision.resolve_precision(True, CPU).autocast
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "avx512f"})
    assert not precision.resolve_precision(True, CPU).autocast
    monkeypatch.setenv("NNLAB_CPU_BF16", "yes")  # not 0/1: ignored, detection decides
    assert not precision.resolve_precision(True, CPU).autocast


@pytest.mark.parametrize("native, dtype", [("1", torch.bfloat16), ("0", torch.float32)], ids=["bf16-cpu", "no-bf16-cpu"])
def test_amp_runs_the_forward_in_bf16_only_where_the_cpu_has_it(monkeypatch, native, dtype):
    monkeypatch.setenv("NNLAB_CPU_BF16", native)
    monkeypatch.setattr(precision, "_said", set())
    learner = _learner(_mlp(), amp=True)
    seen = []
    learner.model[0].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    x, y = _batches(1)[0]
    learner.train_step(x, y, 0)
    ev = learner.evaluate(EvalSet(x, y), 1000)
    assert seen == [dtype, dtype]  # the training forward, then the evaluation forward
    assert learner.precision == ("bf16-autocast" if native == "1" else "fp32")
    assert all(p.dtype == torch.float32 for p in learner.model.parameters())  # weights stay fp32 either way
    assert torch.isfinite(torch.tensor(ev.loss))


MLP_TORCH = ["train", "mlp", "--backend", "torch", "--n-samples", "100", "--epochs", "1", "--hidden", "8", "--progress", "off"]


def test_summary_records_the_precision_that_ran(tmp_path, monkeypatch, capsys, make_fake_cifar):
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path / "cache"))
    data = make_fake_cifar(tmp_path, n_train_per_batch=8, n_test=8)
    cnn = ["train", "cnn", "--data-dir", str(data), "--allow-partial", "--val-size", "8", "--batch-size", "4", "--steps", "1",
           "--eval-every", "1", "--progress", "off"]
    cases = {  # (native bf16 reported, argv) -> precision in summary.json
        ("1", "mlp-amp"): ([*MLP_TORCH, "--amp"], "bf16-autocast"),
        ("0", "mlp-amp"): ([*MLP_TORCH, "--amp"], "fp32"),
        ("1", "mlp"): (MLP_TORCH, "fp32"),
        ("1", "cnn-amp"): ([*cnn, "--amp"], "bf16-autocast"),
        ("1", "cnn"): ([*cnn, "--no-amp"], "fp32"),
    }
    for (native, name), (argv, expected) in cases.items():
        monkeypatch.setenv("NNLAB_CPU_BF16", native)
        out = tmp_path / f"{name}-{native}"
        assert main([*argv, "--out", str(out)]) == 0, capsys.readouterr().err
        assert json.loads((out / "summary.json").read_text())["precision"] == expected, (native, name)


def test_amp_without_native_bf16_says_so_once_and_trains_in_fp32(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NNLAB_CPU_BF16", "0")
    monkeypatch.setattr(precision, "_said", set())
    note = "nnlab: --amp: this CPU has no native bf16 (AVX512-BF16/AMX); running in fp32\n"
    assert main([*MLP_TORCH, "--amp", "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert err.count(note) == 1 and "Traceback" not in err, err
    assert main([*MLP_TORCH, "--amp", "--out", str(tmp_path / "b")]) == 0
    assert note not in capsys.readouterr().err  # said once per process
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["precision"] == "fp32"


# -- (d) early stopping needs a validation split -------------------------------------------------------
def test_fit_refuses_early_stopping_without_a_validation_split():
    x, y = _batches(1, batch=16)[0]
    data = TaskData(train=ArraySource(x, y, 8, 0), test=EvalSet(x, y), val=None)
    cfg = TrainConfig(device="cpu", epochs=1, early_stop_accuracy=0.9, progress="off")
    learner = _learner(_mlp())
    before = copy.deepcopy(learner.model.state_dict())
    with pytest.raises(ConfigError, match="watches the validation split, and this run has none"):
        fit(learner, data, cfg, run=None, config_record={})
    assert all(torch.equal(v, before[k]) for k, v in learner.model.state_dict().items())  # refused before training


def test_cli_early_stop_without_validation_is_one_message(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "mlp", "--dataset", "moons", "--val-fraction", "0", "--early-stop-accuracy", "0.9",
                 "--progress", "off", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("nnlab: error: --early-stop-accuracy watches the validation split"), err
    assert not out.exists()  # refused before the run folder is made: nothing left behind


# -- (e) flip test-time augmentation -------------------------------------------------------------------
class _EdgeColumns(nn.Module):
    """Logits known by hand: (sum of the left pixel column, sum of the right one) * scale. Mirroring swaps them."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.05))

    def forward(self, x):  # (B, 3, H, W) -> (B, 2)
        return self.scale * torch.stack([x[..., 0].sum((1, 2)), x[..., -1].sum((1, 2))], 1)


def test_tta_flip_evaluates_the_mean_of_the_image_and_its_mirror():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 3, 8, 8, generator=g), torch.tensor([0, 1, 0, 1, 1, 0])
    left, right = 0.05 * x[..., 0].sum((1, 2)), 0.05 * x[..., -1].sum((1, 2))
    plain_logits = torch.stack([left, right], 1)  # (B, 2)
    tta_logits = torch.stack([(left + right) / 2, (left + right) / 2], 1)  # mean of the image's and the mirror's
    for tta, logits in ((False, plain_logits), (True, tta_logits)):
        learner = _learner(_EdgeColumns(), num_classes=2, tta_flip=tta)
        torch.testing.assert_close(learner.predict_proba(x), torch.softmax(logits, 1))
        ev = learner.evaluate(EvalSet(x, y), 4)  # two chunks
        assert ev.loss_sum == pytest.approx(nn.functional.cross_entropy(logits, y, reduction="sum").item(), rel=1e-5)
    flat = torch.rand(5, 4, generator=g)  # not an image: nothing to mirror
    learner = _learner(nn.Linear(4, 3), tta_flip=True)
    with torch.no_grad():
        torch.testing.assert_close(learner.predict_proba(flat), torch.softmax(learner.model(flat), 1))


def _moved(x, n):
    """Reference shift, by slicing: content moves n pixels down-right (up-left when n < 0), zeros fill in."""
    out = torch.zeros_like(x)
    if n > 0:
        out[..., n:, n:] = x[..., :-n, :-n]
    else:
        out[..., :n, :n] = x[..., -n:, -n:]
    return out


@pytest.mark.parametrize("flip", [False, True])
def test_tta_translate_averages_the_shifted_views_with_weights_half_quarter_quarter(flip):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    x, y = torch.randn(5, 3, 8, 8), torch.tensor([0, 1, 2, 1, 0])
    with torch.no_grad():
        view = (lambda v: 0.5 * (model(v) + model(v.flip(3)))) if flip else model
        want = 0.5 * view(x) + 0.25 * view(_moved(x, 2)) + 0.25 * view(_moved(x, -2))
        plain = view(x)
    learner = _learner(model, tta_flip=flip, tta_translate=2)
    torch.testing.assert_close(learner.predict_proba(x), torch.softmax(want, 1))
    assert not torch.allclose(want, plain, atol=1e-3)  # the shifted views change the answer here
    ev = learner.evaluate(EvalSet(x, y), 2)  # three chunks
    assert ev.loss_sum == pytest.approx(nn.functional.cross_entropy(want, y, reduction="sum").item(), rel=1e-5)


def test_tta_translate_must_be_a_nonnegative_pixel_count():
    with pytest.raises(ConfigError, match="tta_translate"):
        TrainConfig(tta_translate=-1)


# -- (f) no weight decay on 1-D parameters -----------------------------------------------------------
def _convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def test_no_decay_1d_puts_every_1d_parameter_in_a_group_without_weight_decay():
    model = _convnet()
    cfg = OptimConfig(optimizer="sgd", lr=0.5, weight_decay=0.1, no_decay_1d=True)
    groups = param_groups(model, cfg)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(groups[0]["params"]) == ids(p for p in model.parameters() if p.dim() > 1)  # conv kernel, linear weight
    assert ids(groups[1]["params"]) == ids(p for p in model.parameters() if p.dim() == 1)  # biases, BatchNorm
    assert groups[1]["weight_decay"] == 0.0 and "weight_decay" not in groups[0]
    assert len(groups[0]["params"]) == 2 and len(groups[1]["params"]) == 4
    # off (or no decay at all): one plain list of every parameter
    assert ids(param_groups(model, OptimConfig(weight_decay=0.1))) == ids(model.parameters())
    assert ids(param_groups(model, OptimConfig(weight_decay=0.0, no_decay_1d=True))) == ids(model.parameters())

    # one SGD step with zero gradients: only the decay moves a weight, W <- (1 - lr wd) W; 1-D parameters stay
    opt = build_torch_optimizer(groups, cfg, CPU)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for k, p in model.named_parameters():
        want = before[k] * (1 - 0.5 * 0.1) if p.dim() > 1 else before[k]
        torch.testing.assert_close(p.detach(), want, rtol=1e-6, atol=0)
