"""Part I: the MLP (NumPy from scratch or PyTorch): its spec and learner (also used on CIFAR-10 by ``cifar``) and the
moons/circles task, ``nnlab train mlp --dataset moons|circles``. Its recipes: ``nnlab.experiments.recipes``.

Both backends run through the same loop (``nnlab.train.loop.fit``); only the learner differs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from .._io import atomic_write_bytes
from .._validate import one_of, parse_int_list
from ..data.toy import ToyDataConfig, make_toy
from ..errors import check
from ..numpy_nn.layers import ACTIVATIONS  # the activation names both backends take (NumPy only: a light import)
from ..train.config import OptimConfig, ScheduleConfig, TrainConfig
from ..train.flags import build
from ..train.loop import TaskData
from ..train.runfolder import RunDir
from ..train.sources import ArraySource, EvalSet
from .common import config_record, fit_in_run_folder
from .recipes import TOY_BASE

BACKENDS = ("numpy", "torch")
#: The `best` recipe of moons/circles, under its former name, for scripts written before the registry (the values
#: live in ``nnlab.experiments.recipes.TOY_BASE``; new code calls ``recipes.resolve("mlp-toy", name)``).
TOY_DEFAULTS = TOY_BASE


@dataclass(frozen=True)
class MLPSpec:
    backend: str = field(default="torch", metadata={"help": "implementation: numpy (from scratch) | torch"})
    hidden: tuple[int, ...] = field(default=(20,), metadata={"help": "hidden layer sizes, comma-separated (e.g. 1024,256,32)"})
    init: str = field(default="he", metadata={"help": "weight init: he | xavier"})
    dtype: str = field(default="float64", metadata={"help": "numpy backend precision: float64 | float32"})
    activation: str = field(default="relu", metadata={"help": f"hidden activation: {' | '.join(ACTIVATIONS)}"})

    def __post_init__(self):
        problems = [one_of("backend", self.backend, BACKENDS), one_of("init", self.init, ("he", "xavier")),
                    one_of("dtype", self.dtype, ("float64", "float32")),
                    one_of("activation", self.activation, ACTIVATIONS)]
        check([p for p in problems if p], "model config")
        object.__setattr__(self, "hidden", parse_int_list("hidden", self.hidden))


def build_mlp_learner(spec: MLPSpec, in_features: int, num_classes: int, optim, schedule, train, total_steps, device=None, dist=None):
    from ..train.learners import NumpyLearner, TorchLearner

    if spec.backend == "numpy":
        from ..numpy_nn import MLP as NumpyMLP

        model = NumpyMLP(in_features, spec.hidden, num_classes, init=spec.init, seed=train.seed, dtype=np.dtype(spec.dtype),
                         activation=spec.activation)
        return NumpyLearner(model, optim, schedule, train, total_steps=total_steps, num_classes=num_classes)
    import torch

    from ..models.mlp import MLP as TorchMLP

    # The weights draw from their own generator (CPU: the same draws on every device and rank), not the global RNG.
    model = TorchMLP(in_features, spec.hidden, num_classes, init=spec.init, generator=torch.Generator().manual_seed(train.seed),
                     activation=spec.activation)
    kw = {"dist": dist} if dist is not None else {}
    return TorchLearner(model, optim, schedule, train, total_steps=total_steps, device=device, num_classes=num_classes, **kw)


def _total_steps(train: TrainConfig, steps_per_epoch: int) -> int:
    return train.steps if train.steps else train.epochs * steps_per_epoch


def setup_toy(spec: MLPSpec, data_cfg: ToyDataConfig, optim: OptimConfig, schedule: ScheduleConfig, train: TrainConfig):
    """(learner, task data, dist info) for the Part I MLP on moons/circles."""
    splits = make_toy(data_cfg, train.seed)
    (Xtr, ytr), (Xte, yte) = splits.train, splits.test
    if spec.backend == "numpy":
        dt = np.dtype(spec.dtype)
        cast = lambda X, y: (X.astype(dt), y)  # noqa: E731
        device, dist = None, None
    else:
        import torch

        from ..train.distributed import init_from_env
        from ..train.learners import resolve_device

        device = resolve_device(train.device)
        dist = init_from_env(device.type)
        cast = lambda X, y: (torch.as_tensor(X, dtype=torch.float32, device=device), torch.as_tensor(y, device=device))  # noqa: E731
    src = ArraySource(*cast(Xtr, ytr), train.batch_size, train.seed, **({"dist": dist} if dist else {}))
    val = EvalSet(*cast(*splits.val)) if splits.val is not None else None
    test = EvalSet(*cast(Xte, yte))
    learner = build_mlp_learner(spec, 2, 2, optim, schedule, train, _total_steps(train, src.steps_per_epoch), device, dist)

    def extra(lrn, run: RunDir):
        _decision_grid(lrn, spec, np.concatenate([Xtr, Xte]), np.concatenate([ytr, yte]), Xte, yte, run, device)

    data = TaskData(train=src, test=test, val=val, class_names=splits.class_names,
                    info={"dataset": data_cfg.dataset, "n_train": len(ytr), "n_test": len(yte)}, extra_outputs=extra)
    return learner, data, dist


def toy_configs(recipe_name: str = "default", *, args=None, **over) -> dict:
    """The five configs of one Part I run (``model``, ``data``, ``optim``, ``schedule``, ``train``): dataclass defaults <
    the ``mlp-toy`` recipe < its layer for the backend < ``over`` (``{section: {field: value}}``) < flags in ``args``."""
    from .recipes import resolve

    spec = build(MLPSpec, over.get("model"), args=args)  # first: the backend picks the recipe's layer
    r = resolve("mlp-toy", recipe_name, layer=spec.backend)
    return {"model": spec, "data": build(ToyDataConfig, over.get("data"), prefix="data_", args=args),
            "optim": build(OptimConfig, r.get("optim"), over.get("optim"), prefix="optim_", args=args),
            "schedule": build(ScheduleConfig, r.get("schedule"), over.get("schedule"), prefix="sched_", args=args),
            "train": build(TrainConfig, r.get("train"), over.get("train"), prefix="train_", args=args)}


def train_toy_mlp(spec: MLPSpec, data_cfg: ToyDataConfig, optim: OptimConfig, schedule: ScheduleConfig,
                  train: TrainConfig, *, out=None, resume=False, dry_run=False, recipe=None) -> dict:
    """Train the Part I MLP on moons/circles; returns the summary (also in ``out/summary.json``). ``recipe``: the name
    recorded in config.json (the configs given are what runs; :func:`toy_configs` resolves a recipe into them)."""
    learner, data, dist = setup_toy(spec, data_cfg, optim, schedule, train)
    rec = config_record("mlp", f"mlp-{spec.backend}", recipe, model=spec, data=data_cfg, optim=optim, schedule=schedule, train=train)
    return fit_in_run_folder(learner, data, train, rec, out=out, resume=resume, dry_run=dry_run, dist=dist,
                             desc=f"mlp/{spec.backend}/{data_cfg.dataset}")


def cli_train_toy(args) -> int:
    """``nnlab train mlp --dataset moons|circles``: the ``mlp-toy`` recipe (``--recipe``) < flags."""
    from .common import default_out, print_config, print_summary, resolved_config

    cfg = toy_configs(args.recipe, args=args, data={"dataset": args.dataset})
    spec, train = cfg["model"], cfg["train"]
    if args.print_config:
        print_config(resolved_config("mlp", f"mlp-{spec.backend}", args.recipe, **cfg))
        return 0
    out = args.out or default_out("mlp", spec.backend, args.dataset, f"s{train.seed}")
    s = train_toy_mlp(spec, cfg["data"], cfg["optim"], cfg["schedule"], train, out=out, resume=args.resume,
                      dry_run=args.dry_run, recipe=args.recipe)
    print_summary(s, None if args.dry_run else out)
    return 0


def _decision_grid(learner, spec, X_all, y_all, X_test, y_test, run: RunDir, device, n: int = 200):
    """Probability of class 1 on a grid, saved as ``decision_grid.npz``: ``decision_boundary.png`` is drawn from it
    (``nnlab.report.plots.draw_run_figures``), so it can be redrawn without the model."""
    pad = 0.5
    xs = np.linspace(X_all[:, 0].min() - pad, X_all[:, 0].max() + pad, n)
    ys = np.linspace(X_all[:, 1].min() - pad, X_all[:, 1].max() + pad, n)
    xx, yy = np.meshgrid(xs, ys)
    grid = np.c_[xx.ravel(), yy.ravel()]  # (n*n, 2)
    if spec.backend == "numpy":
        proba = learner.predict_proba(grid.astype(np.dtype(spec.dtype)))[:, 1]
    else:
        import torch

        proba = learner.predict_proba(torch.as_tensor(grid, dtype=torch.float32, device=device))[:, 1].cpu().numpy()
    buf = io.BytesIO()
    np.savez(buf, xx=xx, yy=yy, proba=proba.reshape(xx.shape), X=X_test, y=y_test)
    atomic_write_bytes(run.file("decision_grid.npz"), buf.getvalue())  # decision_boundary.png is drawn from it later
