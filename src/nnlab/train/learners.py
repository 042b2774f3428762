"""Learners: what one optimizer step and one evaluation mean for each backend.

The loop in ``nnlab.train.loop`` is shared by every model; a learner adapts it to a backend:
``TorchLearner`` (any ``nn.Module`` returning logits) and ``NumpyLearner`` (``nnlab.numpy_nn.MLP``).
Training statistics accumulate on the device and are read once per evaluation period (no per-step sync).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from .config import OptimConfig, ScheduleConfig, TrainConfig
from .distributed import DistInfo, all_reduce_sum
from .schedules import lr_multiplier


class EvalResult:
    def __init__(self, loss_sum: float, correct: int, n: int, confusion: np.ndarray | None):
        self.loss_sum, self.correct, self.n, self.confusion = loss_sum, correct, n, confusion

    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, self.n)

    @property
    def accuracy(self) -> float:
        return self.correct / max(1, self.n)


def resolve_device(name: str):
    """Pick the device once, at the edge: ``auto`` prefers CUDA, then MPS, then CPU."""
    import torch

    from ..errors import ConfigError

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available here; valid here: auto, cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but MPS is not available here; valid here: auto, cpu")
    return torch.device(name)


def param_groups(model, cfg: OptimConfig):
    """The model's parameters, or two groups when ``no_decay_1d``: weight decay on weight matrices and conv
    kernels only, none on 1-D parameters (biases, BatchNorm scales and shifts). Decaying a BatchNorm scale
    only rescales what the next normalisation undoes, and shrinks the effective step of the layers before it."""
    if not (cfg.no_decay_1d and cfg.weight_decay > 0):
        return list(model.parameters())
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    return [{"params": decay}, {"params": rest, "weight_decay": 0.0}]


def build_torch_optimizer(params, cfg: OptimConfig, device=None):
    import torch

    # Fused kernels (one op for all parameters) on CPU and CUDA: for small models the optimizer's
    # per-parameter dispatch is a large share of a step (measured in benchmarks/bench_part1.py).
    fused = {"fused": True} if device is not None and device.type in ("cpu", "cuda") else {}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise AssertionError(cfg.optimizer)


class TorchLearner:
    backend = "torch"

    def __init__(self, model, optim: OptimConfig, schedule: ScheduleConfig, train: TrainConfig, *,
                 total_steps: int, device, num_classes: int, dist: DistInfo = DistInfo()):
        import torch

        self.torch = torch
        self.device = device
        self.num_classes = num_classes
        self.optim_cfg, self.sched_cfg, self.cfg = optim, schedule, train
        self.total_steps = total_steps
        self.dist = dist
        self.model = model.to(device)
        if train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        from .precision import resolve_precision, say_once

        prec = resolve_precision(train.amp, device)
        say_once(prec.note)
        self.autocast, self.precision = prec.autocast, prec.name
        self.net = self.model
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if train.compile:
            self.net = torch.compile(self.net)
        self.opt = build_torch_optimizer(param_groups(self.model, optim), optim, device)
        self.ema = None
        if train.ema_decay > 0:
            self.ema = copy.deepcopy(self.model).eval()
            for p in self.ema.parameters():
                p.requires_grad_(False)
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=train.label_smoothing)
        self._lr, self._training = None, False
        self.reset_train_stats()

    def release_process_group(self) -> None:
        """After training under torchrun: the model leaves its DDP wrapper (and a compiled wrapper of it), whose
        reducer holds the process group. Left alive until interpreter exit, the group's gloo threads were torn down
        in the wrong order and aborted the process ("terminate called without an active exception": 8 of 158 two-process
        runs of ``nnlab train mlp --backend torch``; 0 of 100 with this and ``distributed.shutdown``)."""
        self.net = self.model

    # -- training ---------------------------------------------------------------------------------
    def reset_train_stats(self):
        z = self.torch.zeros((), dtype=self.torch.float64, device=self.device)
        self._loss_sum, self._correct, self._count = z.clone(), z.clone(), 0

    def current_lr(self, step: int) -> float:
        return self.optim_cfg.lr * lr_multiplier(self.sched_cfg, step, self.total_steps)

    def train_step(self, x, y, step: int) -> None:
        # Lean on purpose: for small models the per-step Python/dispatch overhead is the cost, so no
        # per-step host sync, no redundant mode switches, and one in-place op per statistic.
        torch = self.torch
        lr = self.current_lr(step)
        if lr != self._lr:
            for g in self.opt.param_groups:
                g["lr"] = lr
            self._lr = lr
        if not self._training:
            self.net.train()
            self._training = True
        if self.cfg.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.autocast:
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                logits = self.net(x).float()  # (B, C)
        else:
            logits = self.net(x)  # (B, C)
        loss = self.loss_fn(logits, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_grad_norm > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad_norm)
            self._loss_sum.add_(norm.detach(), alpha=0.0)  # a NaN/inf norm makes the loss sum NaN: caught at sync
        self.opt.step()
        if self.ema is not None:
            self._update_ema()
        with torch.no_grad():
            # A NaN/inf loss propagates into the running sum, which the loop checks at every sync point.
            self._loss_sum.add_(loss.detach(), alpha=len(y))
            self._correct.add_((logits.argmax(1) == y).sum())
        self._count += len(y)

    def _update_ema(self):
        torch = self.torch
        d = self.cfg.ema_decay
        with torch.no_grad():
            ema_p = [p for p in self.ema.parameters()]
            src_p = [p.detach() for p in self.model.parameters()]
            torch._foreach_lerp_(ema_p, src_p, 1 - d)
            for be, bs in zip(self.ema.buffers(), self.model.buffers()):
                be.copy_(bs)

    def train_stats(self) -> tuple[float, float, bool]:
        """(mean loss, accuracy, finite) since the last reset, all-reduced across ranks: one host sync."""
        torch = self.torch
        t = torch.stack([self._loss_sum, self._correct, torch.tensor(float(self._count), dtype=torch.float64, device=self.device)])
        all_reduce_sum(t)
        loss_sum, correct, count = t.tolist()
        return loss_sum / max(1, count), correct / max(1, count), math.isfinite(loss_sum)

    # -- evaluation -------------------------------------------------------------------------------
    def _logits_eval(self, model, x):
        """Evaluation logits (B, C): test-time augmentation over the views ``tta_flip`` and ``tta_translate`` ask for.

        Views of an image batch (B, 3, H, W): the image itself (weight 1/2 with ``tta_translate``, else 1), shifted by
        ``n`` pixels down-right and up-left (1/4 each, zero padded: zero is the mean colour after normalisation, as in
        training's crops); with ``tta_flip``, each view and its mirror share its weight. The logits are averaged."""
        torch = self.torch
        if x.dim() != 4:  # not an image: no views
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                return model(x).float()
        n = self.cfg.tta_translate
        views = [(0, 1.0)] if not n else [(0, 0.5), (n, 0.25), (-n, 0.25)]
        out = None
        for shift, w in views:
            v = x if not shift else _shift(x, shift)
            if self.cfg.channels_last:
                v = v.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                if self.cfg.tta_flip:  # mirror along W, one batch of 2B
                    both = model(torch.cat([v, v.flip(3)])).float()  # (2B, C)
                    logits = 0.5 * (both[:len(x)] + both[len(x):])
                else:
                    logits = model(v).float()
            out = w * logits if out is None else out + w * logits
        return out

    def evaluate(self, evalset, batch_size: int) -> EvalResult:
        torch = self.torch
        model = self.ema if self.ema is not None else self.model
        model.eval()
        self._training = False
        C = self.num_classes
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        confusion = torch.zeros(C * C, dtype=torch.float64, device=self.device)
        with torch.inference_mode():  # no autograd records or version counters: cheaper than no_grad
            for x, y in evalset.chunks(batch_size, self.dist):
                logits = self._logits_eval(model, x)
                loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum").double()
                confusion += torch.bincount(y * C + logits.argmax(1), minlength=C * C).double()
        t = torch.cat([loss_sum.view(1), confusion])
        all_reduce_sum(t)
        t = t.cpu().numpy()
        cm = t[1:].reshape(C, C).astype(np.int64)  # rows: true class, columns: predicted
        return EvalResult(float(t[0]), int(np.trace(cm)), int(cm.sum()), cm)

    def predict_proba(self, x):
        torch = self.torch
        model = self.ema if self.ema is not None else self.model
        model.eval()
        self._training = False
        with torch.inference_mode():
            return torch.softmax(self._logits_eval(model, x), dim=1)

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        torch = self.torch
        st = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
              "train_stats": {"loss_sum": self._loss_sum.cpu(), "correct": self._correct.cpu(), "count": self._count},
              "torch_rng": torch.get_rng_state()}
        if self.ema is not None:
            st["ema"] = self.ema.state_dict()
        if torch.cuda.is_available() and self.device.type == "cuda":
            st["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return st

    def load_state_dict(self, st: dict) -> None:
        torch = self.torch
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        if self.ema is not None and "ema" in st:
            self.ema.load_state_dict(st["ema"])
        ts = st["train_stats"]
        self._loss_sum = ts["loss_sum"].to(self.device)
        self._correct = ts["correct"].to(self.device)
        self._count = int(ts["count"])
        torch.set_rng_state(st["torch_rng"])
        if "cuda_rng" in st and self.device.type == "cuda":
            torch.cuda.set_rng_state(st["cuda_rng"], self.device)


class NumpyLearner:
    """The from-scratch MLP (``nnlab.numpy_nn``) behind the same loop; arrays stay NumPy."""

    backend = "numpy"

    def __init__(self, model, optim: OptimConfig, schedule: ScheduleConfig, train: TrainConfig, *,
                 total_steps: int, num_classes: int):
        from ..errors import ConfigError
        from ..numpy_nn import SGD, Adam, SoftmaxCrossEntropy

        self.model = model
        self.num_classes = num_classes
        self.optim_cfg, self.sched_cfg, self.cfg = optim, schedule, train
        self.total_steps = total_steps
        unsupported = [f"{k}={getattr(train, k)}" for k in ("label_smoothing", "clip_grad_norm", "ema_decay") if getattr(train, k)]
        if optim.optimizer not in ("sgd", "adam"):
            unsupported.append(f"optimizer={optim.optimizer} (numpy backend: sgd, adam)")
        if unsupported:
            raise ConfigError("the numpy backend does not support: " + ", ".join(unsupported))
        params = model.parameters()
        if optim.optimizer == "sgd":
            self.opt = SGD(params, lr=optim.lr, momentum=optim.momentum, nesterov=optim.nesterov, weight_decay=optim.weight_decay)
        else:
            self.opt = Adam(params, lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps, weight_decay=optim.weight_decay)
        self.loss = SoftmaxCrossEntropy()
        self.device = None
        self.precision = str(np.dtype(getattr(model, "dtype", np.float64)))
        self.dist = DistInfo()
        self.reset_train_stats()

    def reset_train_stats(self):
        self._loss_sum, self._correct, self._count = 0.0, 0, 0

    def current_lr(self, step: int) -> float:
        return self.optim_cfg.lr * lr_multiplier(self.sched_cfg, step, self.total_steps)

    def train_step(self, x, y, step: int) -> None:
        self.opt.lr = self.current_lr(step)
        logits = self.model.forward(x)  # (B, C)
        loss = self.loss.forward(logits, y)
        self.model.backward(self.loss.backward(), input_grad=False)  # dL/dx is not needed
        self.opt.step()
        self._loss_sum += float(loss) * len(y)
        self._correct += int((logits.argmax(1) == y).sum())
        self._count += len(y)

    def train_stats(self):
        c = max(1, self._count)
        return self._loss_sum / c, self._correct / c, math.isfinite(self._loss_sum)

    def evaluate(self, evalset, batch_size: int) -> EvalResult:
        C = self.num_classes
        loss_sum, cm = 0.0, np.zeros(C * C, dtype=np.int64)
        for x, y in evalset.chunks(batch_size):
            logits = self.model.forward(x)
            loss_sum += float(self.loss.forward(logits, y)) * len(y)
            cm += np.bincount(y * C + logits.argmax(1), minlength=C * C)
        cm = cm.reshape(C, C)
        return EvalResult(loss_sum, int(np.trace(cm)), int(cm.sum()), cm)

    def predict_proba(self, x):
        from ..numpy_nn import softmax

        return softmax(self.model.forward(x))

    def state_dict(self) -> dict:
        import torch

        # NumPy arrays travel as tensors so the checkpoint loads under weights_only=True.
        return {"model": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.model.state_dict().items()},
                "optimizer": _np_to_torch(self.opt.state_dict()),
                "train_stats": {"loss_sum": self._loss_sum, "correct": self._correct, "count": self._count}}

    def load_state_dict(self, st: dict) -> None:
        self.model.load_state_dict({k: v.numpy() for k, v in st["model"].items()})
        self.opt.load_state_dict(_torch_to_np(st["optimizer"]))
        ts = st["train_stats"]
        self._loss_sum, self._correct, self._count = float(ts["loss_sum"]), int(ts["correct"]), int(ts["count"])


def _np_to_torch(obj):
    import torch

    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return {k: _np_to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_np_to_torch(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _torch_to_np(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: _torch_to_np(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_torch_to_np(v) for v in obj)
    return obj


def _shift(x, n: int):
    """(B, C, H, W) -> the same batch moved ``n`` pixels down and right (up and left when n < 0), zeros filling in."""
    import torch.nn.functional as F

    H, W = x.shape[2], x.shape[3]
    p = abs(n)
    padded = F.pad(x, (p, p, p, p))  # (B, C, H + 2p, W + 2p)
    return padded[:, :, p - n:p - n + H, p - n:p - n + W]
