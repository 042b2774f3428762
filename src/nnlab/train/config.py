"""Training configs: frozen dataclasses, one per concern; every field documented with its unit.

The CLI builds its flags from these fields (``nnlab.train.flags``), and recipes are plain overrides of
them, so each default is written exactly once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .._io import PROGRESS_MODES
from .._validate import in_range, nonneg_float, nonneg_int, one_of, positive_float, positive_int, seed_range
from ..errors import check

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "exponential", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = field(default="sgd", metadata={"help": "optimizer: " + " | ".join(OPTIMIZERS)})
    lr: float = field(default=0.1, metadata={"help": "peak learning rate (per step)"})
    momentum: float = field(default=0.0, metadata={"help": "SGD/RMSprop momentum (0 = none)"})
    nesterov: bool = field(default=False, metadata={"help": "SGD: Nesterov momentum"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 penalty (AdamW: decoupled decay)"})
    beta1: float = field(default=0.9, metadata={"help": "Adam/AdamW first-moment decay"})
    beta2: float = field(default=0.999, metadata={"help": "Adam/AdamW second-moment decay"})
    alpha: float = field(default=0.99, metadata={"help": "RMSprop smoothing constant (PyTorch default)"})
    eps: float = field(default=1e-8, metadata={"help": "optimizer epsilon"})
    no_decay_1d: bool = field(default=False, metadata={"help": "no weight decay on 1-D parameters (biases, BatchNorm)"})

    def __post_init__(self):
        problems = [
            one_of("optimizer", self.optimizer, OPTIMIZERS),
            positive_float("lr", self.lr),
            in_range("momentum", self.momentum, 0, 1, hi_open=True),
            nonneg_float("weight_decay", self.weight_decay),
            in_range("beta1", self.beta1, 0, 1, hi_open=True),
            in_range("beta2", self.beta2, 0, 1, hi_open=True),
            in_range("alpha", self.alpha, 0, 1, hi_open=True),
            positive_float("eps", self.eps),
        ]
        if self.nesterov and self.optimizer == "sgd" and not self.momentum > 0:
            problems.append("nesterov needs momentum > 0")
        check([p for p in problems if p], "optimizer config")


@dataclass(frozen=True)
class ScheduleConfig:
    schedule: str = field(default="constant", metadata={"help": "learning-rate schedule: " + " | ".join(SCHEDULES)})
    gamma: float = field(default=0.98, metadata={"help": "exponential/step: factor applied every decay_every steps"})
    decay_every: int = field(default=1000, metadata={"help": "exponential/step: steps per gamma factor"})
    warmup: float = field(default=0.0, metadata={"help": "cosine/onecycle: warm-up as a fraction of all steps"})
    final_lr_fraction: float = field(default=0.0, metadata={"help": "cosine/onecycle: final lr as a fraction of the peak"})

    def __post_init__(self):
        problems = [
            one_of("schedule", self.schedule, SCHEDULES),
            in_range("gamma", self.gamma, 0, 1, lo_open=True),
            positive_int("decay_every", self.decay_every),
            in_range("warmup", self.warmup, 0, 1, hi_open=True),
            in_range("final_lr_fraction", self.final_lr_fraction, 0, 1),
        ]
        check([p for p in problems if p], "schedule config")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(default=10, metadata={"help": "passes over the training set (ignored when --steps is set)"})
    steps: int = field(default=0, metadata={"help": "train for this many optimizer steps instead of epochs (0 = use epochs)"})
    eval_every: int = field(default=0, metadata={"help": "evaluate every this many steps (0 = every epoch; with --steps, about 20 evaluations)"})
    batch_size: int = field(default=32, metadata={"help": "global mini-batch size (samples per optimizer step)"})
    seed: int = field(default=0, metadata={"help": "seed of every random choice (init, order, augmentation)"})
    device: str = field(default="auto", metadata={"help": "device: " + " | ".join(DEVICES)})
    amp: bool = field(default=False, metadata={"help": "bf16 autocast where the device computes bf16 natively (CUDA; a CPU with "
                                                       "AVX512-BF16/AMX), else fp32 with a note; summary.json records which ran"})
    channels_last: bool = field(default=False, metadata={"help": "use channels_last memory format for images"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model"})
    label_smoothing: float = field(default=0.0, metadata={"help": "cross-entropy label smoothing in [0, 1)"})
    clip_grad_norm: float = field(default=0.0, metadata={"help": "clip the global gradient norm to this (0 = off)"})
    ema_decay: float = field(default=0.0, metadata={"help": "EMA of weights per step, evaluated instead of raw weights (0 = off)"})
    checkpoint_every: int = field(default=0, metadata={"help": "also checkpoint every this many steps within an epoch (0 = epoch ends only)"})
    early_stop_accuracy: float = field(default=0.0, metadata={"help": "stop once validation accuracy >= this fraction (0 = off)"})
    early_stop_patience: int = field(default=1, metadata={"help": "evaluations in a row that must hold the early-stop target"})
    tta_flip: bool = field(default=False, metadata={"help": "evaluation: average the logits of each image and its mirror image"})
    tta_translate: int = field(default=0, metadata={"help": "evaluation: also average the logits of the image shifted by N pixels "
                                                            "down-right and up-left (zero padded; weights 1/4 each, the "
                                                            "unshifted image 1/2; with their mirrors under --tta-flip); 0 = off"})
    eval_batch_size: int = field(default=1000, metadata={"help": "batch size for evaluation"})
    progress: str = field(default="auto", metadata={"help": "progress bars: auto (on a terminal) | on | off"})

    def __post_init__(self):
        problems = [
            positive_int("epochs", self.epochs),
            nonneg_int("steps", self.steps),
            nonneg_int("eval_every", self.eval_every),
            positive_int("batch_size", self.batch_size),
            nonneg_int("seed", self.seed) or seed_range("seed", self.seed),
            one_of("device", self.device, DEVICES),
            in_range("label_smoothing", self.label_smoothing, 0, 1, hi_open=True),
            nonneg_float("clip_grad_norm", self.clip_grad_norm),
            in_range("ema_decay", self.ema_decay, 0, 1, hi_open=True),
            nonneg_int("checkpoint_every", self.checkpoint_every),
            in_range("early_stop_accuracy", self.early_stop_accuracy, 0, 1),
            positive_int("early_stop_patience", self.early_stop_patience),
            nonneg_int("tta_translate", self.tta_translate),
            positive_int("eval_batch_size", self.eval_batch_size),
            one_of("progress", self.progress, PROGRESS_MODES),
        ]
        check([p for p in problems if p], "training config")


def from_record(cls, section: dict, **overrides):
    """Rebuild the config dataclass ``cls`` from its section of a run's config record (``config.json``, a
    checkpoint's ``config``), with ``overrides`` on top.

    Keys that ``cls`` does not (or no longer) have are dropped, so a record written by another nnlab version
    still loads; missing keys take the dataclass defaults; the values are validated as always. For any config
    dataclass (``OptimConfig``, ``RNNConfig``, ``PalindromeConfig``, ...)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"from_record needs a config dataclass, got {cls!r}")
    if not isinstance(section, dict):
        raise TypeError(f"the record's {cls.__name__} section must be a dict, got {type(section).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:  # overrides come from code, not from the record: a wrong name is a bug, never ignored
        raise TypeError(f"{cls.__name__} has no field {', '.join(map(repr, unknown))}; valid: {', '.join(sorted(names))}")
    return cls(**{k: v for k, v in {**section, **overrides}.items() if k in names})
