"""Part I: one training epoch of the moons MLP, ours against the usual alternatives, side by side.

Data: moons, 1,000 points, 80/20 split -> 800 training points; MLP 2 -> 20 -> 2 (ReLU); batch 5 (160 steps per
epoch); SGD with momentum 0.9, no weight decay. Every contender keeps its model and optimizer between rounds
(one round = one more epoch), as training does; evaluation is not timed.

NumPy (float64):
  ours       the CLI's path: nnlab.experiments.mlp.setup_toy(backend="numpy") -> NumpyLearner + ArraySource,
             then the body of nnlab.train.loop.fit: ``x, y = src.batch(epoch, i); learner.train_step(x, y, step)``
             for every step, and ``train_stats()`` once at the epoch's end
  sklearn    sklearn.neural_network.MLPClassifier(hidden_layer_sizes=(20,), solver="sgd", batch_size=5,
             learning_rate="constant", momentum=0.9, nesterovs_momentum=False, alpha=0, shuffle=True),
             one ``partial_fit`` per epoch (exactly one shuffled pass; initialised before timing).
             Note: for two classes sklearn uses one logistic output unit, we use two softmax logits.
  engine     (reference) nnlab.numpy_nn.train_epoch, the engine's own epoch (used by numpy_nn.MLPClassifier)

Threads: one everywhere (torch.set_num_threads(1), and threadpoolctl limits NumPy's/SciPy's OpenBLAS and
OpenMP to 1): a 2-20-2 net on 5-row batches gains nothing from threads; they only add overhead, and on a
shared machine a spinning BLAS thread pool makes one side's timing depend on the others' load.

PyTorch (float32, CPU):
  ours       setup_toy(backend="torch", device="cpu") -> TorchLearner + ArraySource (the training set is one
             tensor; a batch is an index into it; loss/accuracy accumulate on the device, read once per epoch)
  textbook   DataLoader(TensorDataset(X, y), batch_size=5, shuffle=True), nnlab.models.mlp.MLP,
             torch.optim.SGD(momentum=0.9), CrossEntropyLoss, ``loss.item()`` every step
  (and, for the table only, each side's data pipeline alone: the batches of one epoch without training)
  Both sides run the SAME optimizer implementation, ``--fused``: on (default) = the fused kernel, which nnlab
  uses on CPU/CUDA; off = torch's default (a for-loop on CPU); both = the pair timed in each, in the same rounds.

Targets: sklearn / ours >= 3 (NumPy); textbook / ours >= 2 (PyTorch).
Usage: python benchmarks/bench_part1.py [--repeats 30 --warmup 3 --fused on|off|both --out part1.json]
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from _common import (add_common_args, textbook_epoch, add_fused_arg, emit, fused_kw, fused_modes, impl_name, interleaved, machine_info,
                     median, paired_ratio, print_table, repeat_calls, set_fused, stats)

from nnlab.data.toy import ToyDataConfig
from nnlab.experiments.mlp import MLPSpec, setup_toy
from nnlab.experiments.recipes import resolve
from nnlab.models.mlp import MLP as TorchMLP
from nnlab.numpy_nn import MLP as NumpyMLP
from nnlab.numpy_nn import SGD as NumpySGD
from nnlab.numpy_nn import SoftmaxCrossEntropy
from nnlab.numpy_nn.mlp import train_epoch
from nnlab.train.config import OptimConfig, ScheduleConfig, TrainConfig

TARGET_NUMPY = 3.0  # sklearn time / our time
TARGET_TORCH = 2.0  # textbook time / our time


def loop_epoch(learner, src):
    """One epoch through the body of ``nnlab.train.loop.fit`` (no evaluation, no checkpoint)."""
    state = {"epoch": 0}

    def run():
        e = state["epoch"]
        base = e * src.steps_per_epoch
        for i in range(src.steps_per_epoch):
            x, y = src.batch(e, i)
            learner.train_step(x, y, base + i)
        learner.train_stats()  # the loop's once-per-period read (one host sync on a GPU)
        learner.reset_train_stats()
        state["epoch"] += 1

    return run


def source_epoch(src):
    """The batches of one epoch from our ArraySource, without training (data-pipeline cost alone)."""
    state = {"epoch": 0}

    def run():
        e = state["epoch"]
        for i in range(src.steps_per_epoch):
            src.batch(e, i)
        state["epoch"] += 1

    return run


def torch_breakdown(learner, src, tb_model, tb_opt, tb_crit, loader, *, repeats: int, warmup: int, calls: int = 160):
    """Microseconds per call: our step and the textbook step on the same batch, and the pieces they share.

    Only public calls are timed (the learner's internals change; its step is timed whole)."""
    x, y = src.batch(0, 0)
    model = learner.model
    it = {"it": iter(loader)}

    def textbook_step():  # the textbook loop's body on a given batch
        tb_opt.zero_grad()
        out = tb_crit(tb_model(x), y)
        out.backward()
        tb_opt.step()
        out.item()

    def fwd_bwd():
        tb_opt.zero_grad()
        tb_crit(tb_model(x), y).backward()

    def loader_next():
        try:
            next(it["it"])
        except StopIteration:
            it["it"] = iter(loader)
            next(it["it"])

    pieces = {
        "ours: learner.train_step": lambda: learner.train_step(x, y, 0),
        "textbook: step body (zero_grad, fwd, loss, bwd, SGD, item)": textbook_step,
        "  shared: zero_grad + forward + loss + backward": fwd_bwd,
        f"  shared: SGD step (momentum, {impl_name(bool(tb_opt.defaults.get('fused')))})": tb_opt.step,
        "  shared: MLP.forward (Flatten + shape check + layers)": lambda: model(x),
        "  shared: model.layers(x) only": lambda: model.layers(x),
        "  textbook: net.train() (once per epoch there)": tb_model.train,
        "data: ours ArraySource.batch": lambda: src.batch(0, 1),
        "data: textbook DataLoader next()": loader_next,
    }
    t = interleaved({k: repeat_calls(f, calls) for k, f in pieces.items()}, repeats=repeats, warmup=warmup)
    return {k: round(median(v) / calls * 1e6, 1) for k, v in t.items()}


def numpy_breakdown(learner, src, *, repeats: int, warmup: int, calls: int = 160):
    """Microseconds per call: our NumPy step against the engine's own step, and the pieces around them."""
    from nnlab.numpy_nn.mlp import train_step as engine_step

    x, y = src.batch(0, 0)
    model = learner.model
    logits = model.forward(x)
    learner.loss.forward(logits, y)
    grad = learner.loss.backward()  # (5, 2) dL/dlogits
    pieces = {
        "ours: learner.train_step": lambda: learner.train_step(x, y, 0),
        "engine: numpy_nn.mlp.train_step": lambda: engine_step(model, learner.loss, learner.opt, x, y),
        "  forward": lambda: model.forward(x),
        "  SoftmaxCrossEntropy.forward (with label checks)": lambda: learner.loss.forward(logits, y),
        "  backward (input_grad=False)": lambda: model.backward(grad, input_grad=False),
        "  SGD step (one vectorised update)": learner.opt.step,
        "  train stats (float, argmax, int)": lambda: (float(0.5) * len(y), int((logits.argmax(1) == y).sum())),
        "  current_lr (cosine schedule)": lambda: learner.current_lr(0),
        "data: ours ArraySource.batch (gather)": lambda: src.batch(0, 1),
        "data: engine slice of a pre-shuffled copy": lambda: (x[0:5], y[0:5]),
    }
    t = interleaved({k: repeat_calls(f, calls) for k, f in pieces.items()}, repeats=repeats, warmup=warmup)
    return {k: round(median(v) / calls * 1e6, 1) for k, v in t.items()}


def numpy_part(args, data_cfg, optim, schedule, train, hidden, batch):
    """(times per contender, our learner, our task data): ours, sklearn and the engine, interleaved."""
    seed = args.seed
    np_learner, np_data, _ = setup_toy(MLPSpec(backend="numpy", hidden=hidden), data_cfg, optim, schedule, train)
    Xtr = np.asarray(np_data.train.x, dtype=np.float64)
    ytr = np.asarray(np_data.train.y)

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    sk = SkMLP(hidden_layer_sizes=hidden, solver="sgd", batch_size=batch, learning_rate="constant",
               learning_rate_init=optim.lr, momentum=optim.momentum, nesterovs_momentum=False, alpha=0.0,
               shuffle=True, random_state=seed, max_iter=1)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    sk.partial_fit(Xtr, ytr, classes=np.array([0, 1]))  # initialise outside the timed region

    eng_model = NumpyMLP(2, hidden, 2, seed=seed)
    eng_opt = NumpySGD(eng_model.parameters(), lr=optim.lr, momentum=optim.momentum)
    eng_loss, eng_rng = SoftmaxCrossEntropy(), np.random.default_rng(seed)
    times = interleaved({
        "ours": loop_epoch(np_learner, np_data.train),
        "sklearn": lambda: sk.partial_fit(Xtr, ytr),
        "engine": lambda: train_epoch(eng_model, eng_loss, eng_opt, Xtr, ytr, batch_size=batch, rng=eng_rng),
    }, repeats=args.repeats, warmup=args.warmup)
    return times, np_learner, np_data


def torch_part(args, data_cfg, optim, schedule, train, hidden, batch):
    """(times per contender, {fused: (learner, data, textbook model, optimizer, loss, loader)}): ours and the
    textbook loop with the same optimizer implementation, per ``--fused`` setting, all in the same rounds.
    Keys: ``ours``/``textbook`` for the first setting, ``ours_<impl>``/``textbook_<impl>`` for a second."""
    modes = fused_modes(args.fused)
    contenders, sides = {}, {}
    for k, fused in enumerate(modes):
        sfx = "" if k == 0 else ("_fused" if fused else "_default")
        learner, data, _ = setup_toy(MLPSpec(backend="torch", hidden=hidden), data_cfg, optim, schedule, train)
        set_fused(learner.opt, fused)
        Xt, yt = data.train.x, data.train.y  # (800, 2) float32, (800,) int64, on the CPU
        torch.manual_seed(args.seed)
        tb_model = TorchMLP(2, hidden, 2)
        tb_opt = torch.optim.SGD(tb_model.parameters(), lr=optim.lr, momentum=optim.momentum, **fused_kw(fused))
        tb_crit = nn.CrossEntropyLoss()
        loader = DataLoader(TensorDataset(Xt.clone(), yt.clone()), batch_size=batch, shuffle=True,
                            generator=torch.Generator().manual_seed(args.seed))
        sides[fused] = (learner, data, tb_model, tb_opt, tb_crit, loader)
        contenders["ours" + sfx] = loop_epoch(learner, data.train)
        contenders["textbook" + sfx] = textbook_epoch(tb_model, tb_opt, tb_crit, loader)
    learner, data, *_, loader = sides[modes[0]]

    def loader_epoch():
        for _ in loader:
            pass

    contenders["ours_data_only"] = source_epoch(data.train)
    contenders["textbook_data_only"] = loader_epoch
    return interleaved(contenders, repeats=args.repeats, warmup=args.warmup), sides


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, repeats=30, warmup=3)
    add_fused_arg(ap)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-breakdown", action="store_true", help="skip the per-piece timing of one training step")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    threadpool_limits(limits=1)  # NumPy's/SciPy's OpenBLAS and OpenMP: one thread for every contender
    info = machine_info()
    batch, hidden = 5, (20,)
    modes = fused_modes(args.fused)
    data_cfg = ToyDataConfig(dataset="moons", n_samples=1000)
    best = resolve("mlp-toy", "best")
    optim = OptimConfig(**best["optim"])  # SGD lr 0.05, momentum 0.9 (the `best` recipe)
    schedule = ScheduleConfig(**best["schedule"])
    train = TrainConfig(epochs=args.warmup + args.repeats + 1, batch_size=batch, seed=args.seed, device="cpu", progress="off")

    np_times, np_learner, np_data = numpy_part(args, data_cfg, optim, schedule, train, hidden, batch)
    t_times, sides = torch_part(args, data_cfg, optim, schedule, train, hidden, batch)
    breakdown = {}
    if not args.no_breakdown:  # after the epochs, so the epoch figures are untouched by it
        t_learner, t_data, tb_model, tb_opt, tb_crit, loader = sides[modes[0]]
        breakdown["numpy_us_per_call"] = numpy_breakdown(np_learner, np_data.train, repeats=args.repeats, warmup=args.warmup)
        breakdown["torch_us_per_call"] = torch_breakdown(t_learner, t_data.train, tb_model, tb_opt, tb_crit, loader,
                                                         repeats=args.repeats, warmup=args.warmup)
    result = report(args, info, np_times, t_times, breakdown, n=len(np_data.train.y), steps=np_data.train.steps_per_epoch,
                    batch=batch, hidden=hidden, optim=optim)
    emit(result, args.out)
    return result


def report(args, info, np_times, t_times, breakdown, *, n, steps, batch, hidden, optim) -> dict:
    """Print the tables and return the JSON record."""
    modes = fused_modes(args.fused)
    all_times = {**{f"numpy_{k}": v for k, v in np_times.items()}, **{f"torch_{k}": v for k, v in t_times.items()}}
    m = {k: median(v) for k, v in all_times.items()}
    r_np = m["numpy_sklearn"] / m["numpy_ours"]
    r_t = m["torch_textbook"] / m["torch_ours"]
    print(f"Part I epoch: moons, {n} training points, batch {batch} ({steps} steps), MLP 2-{hidden[0]}-2, "
          f"SGD momentum {optim.momentum}, torch optimizer {impl_name(modes[0])} on both sides; median of "
          f"{args.repeats} interleaved rounds after {args.warmup} warm-up; torch threads {torch.get_num_threads()}")
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info.get('loadavg_1min_at_start')}; "
          f"numpy {info['numpy']}, torch {info['torch']}, sklearn {info['sklearn']}")
    second = [] if len(modes) == 1 else [("_fused" if modes[1] else "_default", impl_name(modes[1]))]
    labels = [("numpy_ours", "numpy  ours (NumpyLearner + ArraySource)", "numpy_ours"),
              ("numpy_sklearn", "numpy  sklearn MLPClassifier.partial_fit", "numpy_ours"),
              ("numpy_engine", "numpy  numpy_nn.train_epoch (reference)", "numpy_ours"),
              ("torch_ours", f"torch  ours (TorchLearner + ArraySource), {impl_name(modes[0])}", "torch_ours"),
              ("torch_textbook", f"torch  textbook DataLoader loop, {impl_name(modes[0])}", "torch_ours")]
    for sfx, impl in second:
        labels += [(f"torch_ours{sfx}", f"torch  ours, {impl}", f"torch_ours{sfx}"),
                   (f"torch_textbook{sfx}", f"torch  textbook, {impl}", f"torch_ours{sfx}")]
    labels += [("torch_ours_data_only", "torch  ours, batches only", "torch_ours"),
               ("torch_textbook_data_only", "torch  DataLoader, batches only", "torch_ours")]
    print_table(["contender", "ms/epoch", "us/step", "x ours"], [[label, m[k] * 1e3, m[k] * 1e6 / steps, m[k] / m[ref]]
                                                               for k, label, ref in labels])
    p_np = paired_ratio(np_times["sklearn"], np_times["ours"])
    by_impl = {}
    for sfx, fused in zip(["", *(s for s, _ in second)], modes):
        rr = m[f"torch_textbook{sfx}"] / m[f"torch_ours{sfx}"]
        pr = paired_ratio(t_times[f"textbook{sfx}"], t_times[f"ours{sfx}"])
        by_impl["fused" if fused else "default"] = {"ratio_textbook_over_ours": round(rr, 3),
                                                    "paired_ratio_textbook_over_ours": pr}
    p_t = by_impl["fused" if modes[0] else "default"]["paired_ratio_textbook_over_ours"]
    p_data = paired_ratio(t_times["textbook_data_only"], t_times["ours_data_only"])
    print(f"NumPy:   sklearn / ours  = {r_np:.2f}  (per-round ratio median {p_np['median']:.2f}, quartiles "
          f"{p_np['q1']:.2f}-{p_np['q3']:.2f}; target >= {TARGET_NUMPY:g}: {'met' if r_np >= TARGET_NUMPY else 'MISSED'})")
    for impl, v in by_impl.items():
        rr, pr = v["ratio_textbook_over_ours"], v["paired_ratio_textbook_over_ours"]
        print(f"PyTorch: textbook / ours = {rr:.2f} with the {impl} optimizer on both  (per-round ratio median "
              f"{pr['median']:.2f}, quartiles {pr['q1']:.2f}-{pr['q3']:.2f}; target >= {TARGET_TORCH:g}: "
              f"{'met' if rr >= TARGET_TORCH else 'MISSED'})")
    print(f"PyTorch data pipeline alone: DataLoader / ArraySource = {m['torch_textbook_data_only'] / m['torch_ours_data_only']:.1f}")
    for key, title in (("numpy_us_per_call", "NumPy step"), ("torch_us_per_call", "PyTorch step")):
        if key in breakdown:
            print(f"\nWhere the time goes, {title} (us per call, same batch, median of interleaved rounds):")
            print_table(["piece", "us/call"], [[k, v] for k, v in breakdown[key].items()])
    return {
        "bench": "part1_epoch", "dataset": "moons", "n_train": n, "batch_size": batch, "steps_per_epoch": steps,
        "hidden": list(hidden), "optimizer": f"sgd lr={optim.lr} momentum={optim.momentum}",
        "torch_optimizer_impl": impl_name(modes[0]), "fused": args.fused,
        "torch_threads": torch.get_num_threads(), "repeats": args.repeats, "warmup": args.warmup,
        "ms_per_epoch": {k: stats(v, 1e3) for k, v in all_times.items()},
        "ratio_sklearn_over_ours": round(r_np, 3), "paired_ratio_sklearn_over_ours": p_np,
        "target_sklearn_over_ours": TARGET_NUMPY,
        "met_numpy": bool(r_np >= TARGET_NUMPY),
        "ratio_engine_over_ours": round(m["numpy_engine"] / m["numpy_ours"], 3),
        "ratio_textbook_over_ours": round(r_t, 3), "paired_ratio_textbook_over_ours": p_t,
        "torch_by_optimizer_impl": by_impl,
        "target_textbook_over_ours": TARGET_TORCH,
        "ratio_data_only_dataloader_over_ours": round(m["torch_textbook_data_only"] / m["torch_ours_data_only"], 3),
        "paired_ratio_data_only": p_data,
        "met_torch": bool(r_t >= TARGET_TORCH),
        "breakdown": breakdown,
        "machine": info,
    }


if __name__ == "__main__":
    main()
    sys.exit(0)
