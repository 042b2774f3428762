"""CIFAR-10: loading the cached set, an MLP epoch and VGG training throughput, ours against the usual way.

Data: ``load_cifar10()`` from ``--data-dir`` / ``$NNLAB_DATA_DIR`` (else ./data). When no CIFAR-10 is found the
script says so and uses random uint8 images of the same shape (timings of the training parts are still
meaningful; the loading part is then skipped).

1. Loading: ``load_cifar10()`` called once (decodes the archive and writes the cache if there is none yet),
   then ``--load-repeats`` more calls, each a cache hit; the figure is their median. Target < 1 s.

2. MLP epoch on a fixed subset (``--subset`` images, default 10,000), the ``seed`` recipe's MLP
   (recipes.resolve("mlp-cifar10", "seed"): hidden (256,), SGD lr 0.01 momentum 0.9, batch 64):
     ours       nnlab.experiments.cifar.load_cifar_task (uint8 tensor on the device, a batch is an index into it,
                normalised per batch in one op by ArraySource's ``prepare``) + build_mlp_learner's TorchLearner,
                driven by the body of nnlab.train.loop.fit (``src.batch`` + ``learner.train_step``)
     tutorial   the same model class, init and optimizer fed by DataLoader(batch_size=64, shuffle=True,
                num_workers=0) over a per-sample Dataset whose __getitem__ turns one uint8 image into a normalised
                float tensor (ToTensor + Normalize done by hand; torchvision's ToTensor on a PIL image does more
                work, so this is generous to the tutorial), ``loss.item()`` every step
   Each round is one epoch of each. Target tutorial / ours >= 2.

3. VGG (nnlab.models.vgg, the report's table), batch 32, the ``seed`` recipe's Adam lr 1e-4, on the device:
     ours       ArraySource.batch (augmentation off: normalise only) + TorchLearner.train_step
     bare       the model's forward + cross-entropy + backward + Adam step on batches normalised beforehand,
                in the recipe's precision and memory layout as resolved for the device (bf16 autocast and
                channels_last where ours uses them), so the ratio measures our loop, not a precision
   Each round runs ``--vgg-steps`` steps of each (after a warm-up round of one step each); img/s from the
   median round. Target ours / bare >= 0.90.

Optimizers: every contender runs the SAME implementation, ``--fused``: on (default) = the fused kernel, which
nnlab's learners use on CPU/CUDA; off = torch's default (a for-loop on CPU, foreach on CUDA); both = each pair
timed in both, in the same rounds (the MLP and VGG parts then take twice as long).

Threads: 1 by default (``--threads 0`` for torch's default), the same for every contender: on a small shared
machine a multi-threaded op waits for a core held by another process, which made the figures both slower and
erratic (2 threads on a busy 2-core CPU: VGG 2.7 s/step, vs 1.3 s/step with 1). Evaluation is never timed.
Usage: python benchmarks/bench_cifar.py [--data-dir DIR --subset 10000 --repeats 5 --vgg-steps 1 --vgg-repeats 20
                                        --threads 1 --device cpu --skip load,mlp,vgg --fused on|off|both --out cifar.json]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from _common import (add_common_args, textbook_epoch, add_fused_arg, emit, fused_kw, fused_modes, impl_name, interleaved, machine_info,
                     median, paired_ratio, print_table, set_fused, stats)

from nnlab.data import device_batches as db
from nnlab.data.cifar10 import MEAN, STD, load_cifar10
from nnlab.errors import DataError
from nnlab.experiments.cifar import CifarDataConfig, load_cifar_task
from nnlab.experiments.mlp import MLPSpec, build_mlp_learner
from nnlab.experiments.recipes import resolve
from nnlab.models.mlp import MLP as TorchMLP
from nnlab.models.vgg import VGG, VGGConfig
from nnlab.train.config import OptimConfig, ScheduleConfig, TrainConfig
from nnlab.train.learners import TorchLearner, resolve_device
from nnlab.train.sources import ArraySource

TARGET_LOAD_S = 1.0
TARGET_MLP = 2.0  # tutorial time / our time
TARGET_VGG = 0.90  # our img/s / bare img/s


class TutorialDataset(Dataset):
    """The tutorial pipeline: one image at a time, uint8 (3, 32, 32) -> float in [0, 1] -> (x - mean) / std."""

    def __init__(self, x_uint8: np.ndarray, y: np.ndarray):
        self.x, self.y = x_uint8, y
        self.mean = torch.tensor(MEAN, dtype=torch.float32).view(3, 1, 1)  # (3, 1, 1)
        self.std = torch.tensor(STD, dtype=torch.float32).view(3, 1, 1)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        img = torch.from_numpy(self.x[i]).float().div(255)  # ToTensor: (3, 32, 32) in [0, 1]
        return (img - self.mean) / self.std, int(self.y[i])  # Normalize


def get_data(data_dir, n_needed: int):
    """(train_x uint8 (N, 3, 32, 32), train_y int64 (N,), load record, real?) with real data if found."""
    rec: dict = {}
    try:
        t0 = time.perf_counter()
        arr = load_cifar10(data_dir)
        rec["first_call_s"] = round(time.perf_counter() - t0, 3)
        return arr, rec, True
    except DataError as e:
        rec["error"] = str(e).splitlines()[0][:300]
        rng = np.random.default_rng(0)
        n = max(n_needed, 1)
        x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.int64)
        return (x, y), rec, False


def loop_epoch(learner, src, sync, steps=None):
    """The body of ``nnlab.train.loop.fit`` for ``steps`` steps (default: one epoch); rounds continue the order."""
    state = {"step": 0}
    steps = steps or src.steps_per_epoch

    def run():
        for _ in range(steps):
            s = state["step"]
            e, i = divmod(s, src.steps_per_epoch)
            x, y = src.batch(e, i)
            learner.train_step(x, y, s)
            state["step"] = s + 1
        learner.train_stats()  # the once-per-period read (a host sync on a GPU)
        learner.reset_train_stats()

    return run


def bare_steps(model, opt, premade, steps: int, *, bf16: bool = False):
    """``steps`` bare training steps (forward, cross-entropy, backward, step) on batches prepared beforehand
    (normalised, in the model's memory format); ``bf16``: the forward in bf16 autocast, as ours when it uses it."""
    state = {"k": 0}
    device_type = premade[0][0].device.type

    def run():
        model.train()
        for _ in range(steps):
            xb, yb = premade[state["k"] % len(premade)]
            state["k"] += 1
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(xb).float()  # (B, 10)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            opt.step()

    return run


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, repeats=5, warmup=1)
    ap.add_argument("--data-dir", default=None, help="CIFAR-10 folder (default: $NNLAB_DATA_DIR, else ./data)")
    ap.add_argument("--subset", type=int, default=10000, help="training images used by the MLP epoch")
    ap.add_argument("--load-repeats", type=int, default=5, help="cached load_cifar10() calls timed")
    ap.add_argument("--vgg-steps", type=int, default=1, help="VGG steps per contender per round")
    ap.add_argument("--vgg-repeats", type=int, default=20, help="VGG timed rounds (default 20: 20 steps each)")
    ap.add_argument("--device", default="cpu", help="training device (cpu | cuda | auto)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1; 0: torch's default)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: load, mlp, vgg")
    add_fused_arg(ap)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    skip = {s for s in args.skip.split(",") if s}
    device = resolve_device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    info = machine_info()
    seed = 0
    modes = fused_modes(args.fused)
    sfx = {fused: "" if k == 0 else ("_fused" if fused else "_default") for k, fused in enumerate(modes)}  # key suffix
    impl = {fused: impl_name(fused, device.type) for fused in modes}
    result: dict = {"bench": "cifar", "device": str(device), "torch_threads": torch.get_num_threads(),
                    "repeats": args.repeats, "warmup": args.warmup, "fused": args.fused,
                    "optimizer_impl": impl[modes[0]]}

    # -- 1. loading ---------------------------------------------------------------------------------------
    data, load_rec, real = get_data(args.data_dir, args.subset)
    result["data"] = "cifar10" if real else "random uint8 (CIFAR-10 not found)"
    if not real:
        print(f"NOTE: CIFAR-10 not found ({load_rec['error']}); using random uint8 images of the same shape. "
              f"Loading is not measured; set NNLAB_DATA_DIR or --data-dir for real data.")
    if real and "load" not in skip:
        load_s = []
        for _ in range(args.load_repeats):
            t0 = time.perf_counter()
            load_cifar10(args.data_dir)
            load_s.append(time.perf_counter() - t0)
        load_rec["cached_call_s"] = stats(load_s, 1.0, 4)
        load_rec["target_s"] = TARGET_LOAD_S
        load_rec["met"] = bool(median(load_s) < TARGET_LOAD_S)
    result["load"] = load_rec
    if real:
        train_x, train_y = data.train_x, data.train_y
    else:
        train_x, train_y = data
    n = min(args.subset, len(train_y))
    sub_x, sub_y = np.ascontiguousarray(train_x[:n]), np.asarray(train_y[:n], dtype=np.int64)

    # -- 2. MLP epoch -------------------------------------------------------------------------------------
    r = resolve("mlp-cifar10", "seed")
    optim = OptimConfig(**r["optim"])
    schedule = ScheduleConfig(**r["schedule"])
    bs = r["train"]["batch_size"]
    hidden = tuple(r["model"]["hidden"])
    train_cfg = TrainConfig(**{**r["train"], "epochs": args.warmup + args.repeats + 1}, seed=seed,
                            device=str(device), progress="off")
    if real:  # the CLI's own data path
        task = load_cifar_task(CifarDataConfig(data_dir=args.data_dir, val_size=0, train_subset=n, test_subset=100),
                               train_cfg, device)
        src = task.train
        prepare = src.prepare
    else:
        def prepare(x, seed):  # load_cifar_task's prep_train with augmentation off
            return db.normalize(x, MEAN, STD)

        src = ArraySource(db.to_device_uint8(sub_x, device), torch.as_tensor(sub_y, device=device), bs, seed, prepare=prepare)
    mlp_rows = []
    if "mlp" not in skip:
        total = train_cfg.epochs * src.steps_per_epoch
        crit = nn.CrossEntropyLoss()
        loader = DataLoader(TutorialDataset(sub_x, sub_y), batch_size=bs, shuffle=True, num_workers=0,
                            generator=torch.Generator().manual_seed(seed))
        contenders = {}
        for fused in modes:  # ours and the tutorial with the same optimizer implementation
            learner = build_mlp_learner(MLPSpec(backend="torch", hidden=hidden), 3072, 10, optim, schedule, train_cfg,
                                        total, device)
            set_fused(learner.opt, fused)
            torch.manual_seed(seed)
            tm = TorchMLP(3072, hidden, 10).to(device)
            topt = torch.optim.SGD(tm.parameters(), lr=optim.lr, momentum=optim.momentum, **fused_kw(fused))
            contenders["ours" + sfx[fused]] = loop_epoch(learner, src, sync)
            contenders["tutorial" + sfx[fused]] = textbook_epoch(tm, topt, crit, loader, device)

        def tutorial_data_only():
            for xb, yb in loader:
                xb.to(device), yb.to(device)

        def ours_data_only():
            for i in range(src.steps_per_epoch):
                src.batch(0, i)

        times = interleaved({**contenders, "ours_data_only": ours_data_only, "tutorial_data_only": tutorial_data_only},
                            repeats=args.repeats, warmup=args.warmup, sync=sync)
        m = {k: median(v) for k, v in times.items()}
        ratio = m["tutorial"] / m["ours"]
        by_impl = {impl[f]: {"ratio_tutorial_over_ours": round(m["tutorial" + sfx[f]] / m["ours" + sfx[f]], 3),
                             "paired_ratio_tutorial_over_ours": paired_ratio(times["tutorial" + sfx[f]], times["ours" + sfx[f]])}
                   for f in modes}
        result["mlp"] = {"images": n, "batch_size": bs, "hidden": list(hidden), "steps_per_epoch": src.steps_per_epoch,
                         "optimizer": f"sgd lr={optim.lr} momentum={optim.momentum}, {impl[modes[0]]} on both sides",
                         "s_per_epoch": {k: stats(v, 1.0, 4) for k, v in times.items()},
                         "ratio_tutorial_over_ours": round(ratio, 3),
                         "paired_ratio_tutorial_over_ours": paired_ratio(times["tutorial"], times["ours"]),
                         "by_optimizer_impl": by_impl,
                         "ratio_data_only_tutorial_over_ours": round(m["tutorial_data_only"] / m["ours_data_only"], 3),
                         "compute_share_of_ours": round(1 - m["ours_data_only"] / m["ours"], 3),
                         "target": TARGET_MLP, "met": bool(ratio >= TARGET_MLP)}
        rows = []
        for f in modes:
            rows += [("ours" + sfx[f], f"ours: uint8 tensor + batched normalise, {impl[f]}", "ours" + sfx[f]),
                     ("tutorial" + sfx[f], f"tutorial: per-sample Dataset + DataLoader, {impl[f]}", "ours" + sfx[f])]
        rows += [("ours_data_only", "ours, batches only", "ours"), ("tutorial_data_only", "tutorial, batches only", "ours")]
        mlp_rows = [[label, m[k], n / m[k], m[k] / m[ref]] for k, label, ref in rows]

    # -- 3. VGG throughput --------------------------------------------------------------------------------
    vgg_rows = []
    if "vgg" not in skip:
        rc = resolve("cnn", "seed")
        vb = rc["train"]["batch_size"]  # 32
        voptim = OptimConfig(**rc["optim"])  # Adam lr 1e-4
        vcfg = TrainConfig(**{**rc["train"], "steps": 10**6}, seed=seed, device=str(device), progress="off")
        nb = 8
        # the recipe's memory layout (channels_last) for bare's model and batches too, as ours uses it
        fmt = torch.channels_last if vcfg.channels_last else torch.contiguous_format
        premade = [(db.normalize(src.x[i * vb:(i + 1) * vb], MEAN, STD).contiguous(memory_format=fmt),
                    src.y[i * vb:(i + 1) * vb]) for i in range(nb)]
        vcontenders, vwarm = {}, {}
        for fused in modes:  # ours and bare with the same Adam implementation
            vsrc = ArraySource(src.x, src.y, vb, seed, prepare=prepare)  # the same tensors and prepare as the CLI
            torch.manual_seed(seed)
            vlearner = TorchLearner(VGG(VGGConfig()), voptim, ScheduleConfig(**rc["schedule"]), vcfg,
                                    total_steps=vcfg.steps, device=device, num_classes=10)
            set_fused(vlearner.opt, fused)
            torch.manual_seed(seed)
            bare = VGG(VGGConfig()).to(device, memory_format=fmt)
            bopt = torch.optim.Adam(bare.parameters(), lr=voptim.lr, betas=(voptim.beta1, voptim.beta2), eps=voptim.eps,
                                    **fused_kw(fused))
            bf16 = bool(vlearner.autocast)  # the recipe's precision as resolved for this device: bare computes the same
            vcontenders["ours" + sfx[fused]] = loop_epoch(vlearner, vsrc, sync, steps=args.vgg_steps)
            vcontenders["bare" + sfx[fused]] = bare_steps(bare, bopt, premade, args.vgg_steps, bf16=bf16)
            # warm-up: one short round (1 step each) instead of a full one; a VGG step on a CPU takes seconds
            vwarm["ours" + sfx[fused]] = loop_epoch(vlearner, vsrc, sync, steps=1)
            vwarm["bare" + sfx[fused]] = bare_steps(bare, bopt, premade, 1, bf16=bf16)
        interleaved(vwarm, repeats=0, warmup=max(1, args.warmup), sync=sync)
        vt = interleaved(vcontenders, repeats=args.vgg_repeats, warmup=0, sync=sync)
        ips = {k: vb * args.vgg_steps / median(v) for k, v in vt.items()}
        vr = ips["ours"] / ips["bare"]
        by_impl = {impl[f]: {"ratio_ours_over_bare": round(ips["ours" + sfx[f]] / ips["bare" + sfx[f]], 3),
                             "paired_ratio_ours_over_bare": paired_ratio(vt["bare" + sfx[f]], vt["ours" + sfx[f]])}
                   for f in modes}
        result["vgg"] = {"batch_size": vb, "steps_per_round": args.vgg_steps, "rounds": args.vgg_repeats,
                         "optimizer": f"adam lr={voptim.lr}, {impl[modes[0]]} on both sides",
                         "precision": "bf16 autocast" if bf16 else "fp32", "channels_last": bool(vcfg.channels_last),
                         "ms_per_step": {k: stats([t / args.vgg_steps for t in v], 1e3, 1) for k, v in vt.items()},
                         "img_per_s": {k: round(v, 1) for k, v in ips.items()},
                         "ratio_ours_over_bare": round(vr, 3),
                         "paired_ratio_ours_over_bare": paired_ratio(vt["bare"], vt["ours"]),  # time ratio = img/s ratio
                         "by_optimizer_impl": by_impl,
                         # fastest round of each: load from other processes only ever adds time
                         "ratio_ours_over_bare_best_round": round(min(vt["bare"]) / min(vt["ours"]), 3),
                         "target": TARGET_VGG, "met": bool(vr >= TARGET_VGG)}
        for f in modes:
            for k, label in [("ours", "ours: ArraySource.batch + TorchLearner.train_step"),
                             ("bare", "bare fwd+bwd+Adam on ready batches")]:
                key = k + sfx[f]
                vgg_rows.append([f"{label}, {impl[f]}", median(vt[key]) / args.vgg_steps * 1e3, ips[key],
                                 ips[key] / ips["bare" + sfx[f]]])

    # -- report -------------------------------------------------------------------------------------------
    print(f"CIFAR-10 benchmarks on {device} ({result['data']}); median of {args.repeats} interleaved rounds after "
          f"{args.warmup} warm-up; torch threads {torch.get_num_threads()}")
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info.get('loadavg_1min_at_start')}; "
          f"numpy {info['numpy']}, torch {info['torch']}, sklearn {info['sklearn']}")
    if "cached_call_s" in load_rec:
        lm = load_rec["cached_call_s"]["median"]
        print(f"\nload_cifar10(): first call {load_rec['first_call_s']:.2f} s, cached call median {lm:.3f} s "
              f"(target < {TARGET_LOAD_S:g} s: {'met' if load_rec['met'] else 'MISSED'})")
    if mlp_rows:
        mr = result["mlp"]
        print(f"\nMLP epoch: {n} images, hidden {hidden}, batch {bs} ({mr['steps_per_epoch']} steps), {mr['optimizer']}")
        print_table(["contender", "s/epoch", "img/s", "x ours"], mlp_rows)
        for name, v in mr["by_optimizer_impl"].items():
            pr, rr = v["paired_ratio_tutorial_over_ours"], v["ratio_tutorial_over_ours"]
            print(f"tutorial / ours = {rr:.2f} with the {name} optimizer on both  (per-round ratio median {pr['median']:.2f}, "
                  f"quartiles {pr['q1']:.2f}-{pr['q3']:.2f}; target >= {TARGET_MLP:g}: {'met' if rr >= TARGET_MLP else 'MISSED'})")
        print(f"data pipeline alone: tutorial / ours = {mr['ratio_data_only_tutorial_over_ours']:.1f}; the model's "
              f"forward/backward/step is {100 * mr['compute_share_of_ours']:.0f}% of our epoch")
    if vgg_rows:
        vr_ = result["vgg"]
        print(f"\nVGG (report's table), batch {vr_['batch_size']}, {vr_['optimizer']}, median of {args.vgg_repeats} rounds "
              f"of {args.vgg_steps} steps each")
        print_table(["contender", "ms/step", "img/s", "x bare"], vgg_rows)
        for name, v in vr_["by_optimizer_impl"].items():
            pv, rr = v["paired_ratio_ours_over_bare"], v["ratio_ours_over_bare"]
            print(f"ours / bare = {rr:.3f} with the {name} optimizer on both  (per-round ratio median {pv['median']:.3f}, "
                  f"quartiles {pv['q1']:.3f}-{pv['q3']:.3f}; target >= {TARGET_VGG:g}: {'met' if rr >= TARGET_VGG else 'MISSED'})")
        print(f"fastest rounds, {impl[modes[0]]}: ours / bare = {vr_['ratio_ours_over_bare_best_round']:.3f}")
    result["machine"] = info
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
