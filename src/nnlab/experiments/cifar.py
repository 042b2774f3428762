"""CIFAR-10: the MLP (Task 1.3) and the report's reduced VGG (Part II), one loop for both.

Their recipes (``seed`` = the report's settings, ``best`` = ours, chosen on the validation split) are the tasks
``mlp-cifar10`` and ``cnn`` of ``nnlab.experiments.recipes``; this module turns one into configs and trains it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .._validate import nonneg_int
from ..errors import ConfigError, check
from ..train.config import OptimConfig, ScheduleConfig, TrainConfig
from ..train.flags import add_dataclass_flags, build
from ..train.loop import TaskData
from ..train.sources import ArraySource, EvalSet
from .common import config_record, fit_in_run_folder, resolved_config


@dataclass(frozen=True)
class CifarDataConfig:
    data_dir: str | None = field(default=None, metadata={"help": "CIFAR-10 folder (default: $NNLAB_DATA_DIR, else ./data)"})
    val_size: int = field(default=5000, metadata={"help": "training images held out for validation (0 = none)"})
    augment: bool = field(default=False, metadata={"help": "augment training images: random crop (see crop_pad) + horizontal flip"})
    crop_pad: int = field(default=4, metadata={"help": "augment: crop padding in pixels (0 = flips only, which suits MLPs)"})
    train_subset: int = field(default=0, metadata={"help": "use only this many training images (0 = all; quick budgets)"})
    test_subset: int = field(default=0, metadata={"help": "use only this many test images (0 = all; quick budgets)"})
    allow_partial: bool = field(default=False, metadata={"help": "accept a data set of other than 50,000/10,000 images (small test archives)"})

    def __post_init__(self):
        check([p for p in (nonneg_int("val_size", self.val_size), nonneg_int("crop_pad", self.crop_pad),
                           nonneg_int("train_subset", self.train_subset),
                           nonneg_int("test_subset", self.test_subset)) if p], "data config")


def load_cifar_task(data_cfg: CifarDataConfig, train: TrainConfig, device, *, numpy_backend: bool = False, dist=None) -> TaskData:
    """CIFAR-10 as uint8 tensors on ``device``; normalisation/augmentation are batched and seeded."""
    import torch

    from ..data import device_batches as db
    from ..data.cifar10 import MEAN, STD, load_cifar10, split_train_val

    arr = load_cifar10(data_cfg.data_dir, expected_sizes=None if data_cfg.allow_partial else (50000, 10000))
    tx, ty, vx, vy = arr.train_x, arr.train_y, None, None
    if data_cfg.val_size:
        tx, ty, vx, vy = split_train_val(tx, ty, data_cfg.val_size, seed=0)  # fixed split: choices never see test
    if data_cfg.train_subset:
        tx, ty = tx[:data_cfg.train_subset], ty[:data_cfg.train_subset]
    ex, ey = arr.test_x, arr.test_y
    if data_cfg.test_subset:
        ex, ey = ex[:data_cfg.test_subset], ey[:data_cfg.test_subset]
    if data_cfg.test_subset and vx is not None:
        vx, vy = vx[:data_cfg.test_subset], vy[:data_cfg.test_subset]
    info = {"dataset": "cifar10", "n_train": int(len(ty)), "n_val": int(len(vy)) if vy is not None else 0, "n_test": int(len(ey))}

    if numpy_backend:  # float32 features (N, 3072), normalised per channel
        mean = np.repeat(np.asarray(MEAN, np.float32), 1024) * 255
        std = np.repeat(np.asarray(STD, np.float32), 1024) * 255
        f = lambda x: (x.reshape(len(x), -1).astype(np.float32) - mean) / std  # noqa: E731
        src = ArraySource(f(tx), np.asarray(ty, np.int64), train.batch_size, train.seed)
        return TaskData(train=src, test=EvalSet(f(ex), np.asarray(ey, np.int64)),
                        val=EvalSet(f(vx), np.asarray(vy, np.int64)) if vx is not None else None,
                        class_names=tuple(arr.class_names), info=info)

    def prep_eval(x):
        return db.normalize(x, MEAN, STD)

    def prep_train(x, seed: int):
        if data_cfg.augment:
            g = torch.Generator().manual_seed(seed)  # CPU generator: same augmentation on every device
            x = db.random_crop_flip(x, pad=data_cfg.crop_pad, flip=True, generator=g)
        return db.normalize(x, MEAN, STD)

    T = lambda a: db.to_device_uint8(a, device)  # noqa: E731
    L = lambda a: torch.as_tensor(np.asarray(a, np.int64), device=device)  # noqa: E731
    kw = {"dist": dist} if dist is not None else {}
    src = ArraySource(T(tx), L(ty), train.batch_size, train.seed, prepare=prep_train, **kw)
    return TaskData(train=src, test=EvalSet(T(ex), L(ey), prepare=prep_eval),
                    val=EvalSet(T(vx), L(vy), prepare=prep_eval) if vx is not None else None,
                    class_names=tuple(arr.class_names), info=info)


def setup_cifar(model_name: str, backend: str, data_cfg: CifarDataConfig, optim_cfg: OptimConfig,
                sched_cfg: ScheduleConfig, train_cfg: TrainConfig, model_over: dict | None = None):
    """(learner, task data, dist info, model config) for the CIFAR-10 MLP or CNN."""
    from ..train.distributed import init_from_env
    from ..train.learners import TorchLearner, resolve_device

    numpy_backend = backend == "numpy"
    device = None if numpy_backend else resolve_device(train_cfg.device)
    dist = None if numpy_backend else init_from_env(device.type)
    task = load_cifar_task(data_cfg, train_cfg, device, numpy_backend=numpy_backend, dist=dist)
    total = train_cfg.steps or train_cfg.epochs * task.train.steps_per_epoch
    if model_name == "mlp":
        from .mlp import MLPSpec, build_mlp_learner

        spec = build(MLPSpec, {"backend": backend}, model_over)
        return build_mlp_learner(spec, 3072, 10, optim_cfg, sched_cfg, train_cfg, total, device, dist), task, dist, spec
    import torch

    from ..models.vgg import VGG, VGGConfig

    vcfg = build(VGGConfig, model_over)
    if device.type == "cpu":
        from ..train.precision import set_cpu_threads_for_large_model

        set_cpu_threads_for_large_model()
    # The weights draw from their own generator (CPU: the same draws on every device and rank), not the global RNG.
    model = VGG(vcfg, generator=torch.Generator().manual_seed(train_cfg.seed))
    kw = {"dist": dist} if dist is not None else {}
    learner = TorchLearner(model, optim_cfg, sched_cfg, train_cfg, total_steps=total, device=device, num_classes=10, **kw)
    return learner, task, dist, vcfg


_TASK = {"mlp": "mlp-cifar10", "cnn": "cnn"}


def cifar_configs(model_name: str, recipe_name: str = "default", *, backend: str = "torch", model_over: dict | None = None,
                  data: dict | None = None, optim: dict | None = None, schedule: dict | None = None,
                  train: dict | None = None, args=None) -> dict:
    """The configs of one CIFAR-10 run: dataclass defaults < the recipe < overrides (dicts) < CLI flags (``args``).

    ``{"model": MLPSpec | VGGConfig, "data", "optim", "schedule", "train"}``; nothing is loaded."""
    from ..models.vgg import VGGConfig
    from .mlp import MLPSpec
    from .recipes import resolve

    r = resolve(_TASK[model_name], recipe_name)
    if model_name == "mlp":  # the model fields: recipe < overrides < flags
        model = build(MLPSpec, {"backend": backend, **r.get("model", {})}, model_over, args=args)
    else:  # the VGG is the report's table (no recipe changes it); setup_cifar builds the same from model_over
        model = build(VGGConfig, model_over)
    return {"model": model,
            "data": build(CifarDataConfig, r.get("data"), data, prefix="data_", args=args),
            "optim": build(OptimConfig, r.get("optim"), optim, prefix="optim_", args=args),
            "schedule": build(ScheduleConfig, r.get("schedule"), schedule, prefix="sched_", args=args),
            "train": build(TrainConfig, r.get("train"), train, prefix="train_", args=args)}


def cifar_record(model_name: str, recipe_name: str, cfg: dict, *, provenance: bool = True) -> dict:
    """config.json of a CIFAR-10 run (``provenance=False``: what ``--print-config`` prints)."""
    return (config_record if provenance else resolved_config)(model_name, f"{model_name}-cifar10", recipe_name, **cfg)


def train_cifar(model_name: str, *, recipe_name: str = "default", model_over: dict | None = None, backend: str = "torch",
                data: dict | None = None, optim: dict | None = None, schedule: dict | None = None, train: dict | None = None,
                args=None, out=None, resume=False, dry_run=False) -> dict:
    """Train the CIFAR-10 MLP or CNN from a recipe plus overrides (dicts) plus CLI flags (``args``)."""
    cfg = cifar_configs(model_name, recipe_name, backend=backend, model_over=model_over, data=data, optim=optim,
                        schedule=schedule, train=train, args=args)
    if model_name == "mlp":  # the resolved model fields, so flags and recipe reach setup_cifar as one dict
        backend, model_over = cfg["model"].backend, dataclasses.asdict(cfg["model"])
    learner, task, dist, cfg["model"] = setup_cifar(model_name, backend, cfg["data"], cfg["optim"], cfg["schedule"],
                                                    cfg["train"], model_over)
    return fit_in_run_folder(learner, task, cfg["train"], cifar_record(model_name, recipe_name, cfg), out=out,
                             resume=resume, dry_run=dry_run, dist=dist, desc=f"{model_name}/cifar10/{recipe_name}")


# -- CLI -------------------------------------------------------------------------------------------
def add_flags(cnn_parser, mlp_parser):
    add_dataclass_flags(cnn_parser, CifarDataConfig, prefix="data_")
    add_dataclass_flags(mlp_parser, CifarDataConfig, prefix="data_", exclude=("data_dir",))


def cli_train(args, model_name: str) -> int:
    """``nnlab train cnn`` and ``nnlab train mlp --dataset cifar10``: the recipe (``--recipe``) < flags."""
    from .common import default_out, print_config, print_summary

    backend = getattr(args, "backend", "torch")
    if args.print_config:
        cfg = cifar_configs(model_name, args.recipe, backend=backend, args=args)
        print_config(cifar_record(model_name, args.recipe, cfg, provenance=False))
        return 0
    out = args.out or default_out(f"{model_name}-cifar10", args.recipe, f"s{getattr(args, 'train_seed', 0)}")
    s = train_cifar(model_name, recipe_name=args.recipe, backend=backend, args=args, out=out, resume=args.resume,
                    dry_run=args.dry_run)
    print_summary(s, None if args.dry_run else out)
    _print_per_class(s)
    return 0


def _print_per_class(s: dict):
    pc = s.get("per_class_accuracy")
    if not pc or s.get("dry_run"):
        return
    print(f"Accuracy of the network on the {s.get('data_n_test', '')} test images: {100 * s['test_accuracy']:.1f} %")
    for name, acc in pc.items():
        print(f"Accuracy for class: {name:10s} is {100 * acc:.1f} %")


def cli_data(args) -> int:
    if args.action != "download":
        raise ConfigError(f"unknown data action {args.action!r}; valid: download")
    if args.dataset != "cifar10":
        raise ConfigError(f"unknown data set {args.dataset!r}; valid: cifar10")
    from ..data.download import OFFICIAL_MD5, OFFICIAL_URL, download_cifar10

    path = download_cifar10(args.data_dir, url=args.url or OFFICIAL_URL, md5=args.md5 or OFFICIAL_MD5)
    print(f"CIFAR-10 ready: {path}")
    return 0
