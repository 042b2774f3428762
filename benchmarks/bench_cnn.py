"""Part II training throughput: ``nnlab train cnn`` against bare training steps, in fp32 and in bf16.

For each CNN recipe (``seed``: batch 32, Adam; ``best``: batch 128, Nesterov SGD), three contenders train the
report's VGG on the same CIFAR-10 images, in the same process, in interleaved rounds (benchmarks/_common.py):

  ours          the real path of ``nnlab train cnn --recipe R``: ``load_cifar_task`` (uint8 images on the device,
                batched normalise and, for ``best``, per-image crop + flip) + ``TorchLearner.train_step`` built from
                the recipe's configs (bf16 autocast where the CPU has native bf16, channels_last)
  bare bf16+CL  model + optimizer only, on batches normalised beforehand: channels_last model and inputs,
                ``torch.autocast(bfloat16)`` forward, fp32 loss, backward, optimizer step
  bare fp32     the same in fp32, default (NCHW) memory format
  bare bf16+CL, library conv   bare bf16+CL with the library's conv kernel everywhere: shows what the patch-matrix
                weight gradient of the 2 x 2 convs (models/conv.py) buys (``patch gain`` = bare bf16+CL / this)

Both bare contenders use the recipe's optimizer built by the same function as ours (``build_torch_optimizer``,
fused kernels on every side) with the same parameter groups, so the optimizer implementation is not a variable.
Evaluation is never timed. Targets (issue "Part II for real"): ours >= 0.90 x bare bf16+CL at the same batch; so
ours >= 1.4 x bare fp32 at batch 32 and >= 1.6 x at batch >= 128.

Usage: python benchmarks/bench_cnn.py [--data-dir DIR] [--recipes seed,best] [--steps 4] [--repeats 5]
                                      [--warmup 1] [--device cpu] [--out cnn.json] [--quick]
``--quick`` runs 1 step per round, 1 round, batch sizes cut to 8 (a smoke test of the script, not a figure).
Check the machine is idle first (``uptime``); the load average is recorded beside the figures.
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch.nn import functional as F

from _common import add_common_args, emit, interleaved, machine_info, median, paired_ratio, print_table, stats

from nnlab.data import device_batches as db
from nnlab.data.cifar10 import MEAN, STD
from nnlab.errors import DataError
from nnlab.experiments.cifar import CifarDataConfig, load_cifar_task
from nnlab.experiments.recipes import resolve
from nnlab.models.conv import Conv3x3
from nnlab.models.vgg import VGG, VGGConfig
from nnlab.train.config import OptimConfig, ScheduleConfig, TrainConfig
from nnlab.train.learners import TorchLearner, build_torch_optimizer, param_groups, resolve_device
from nnlab.train.precision import resolve_precision, set_cpu_threads_for_large_model

TARGET_VS_BARE_BF16 = 0.90
TARGET_VS_FP32 = {32: 1.4, 128: 1.6}  # batch >= key: target


def _fp32_target(batch: int) -> float:
    return max(t for b, t in TARGET_VS_FP32.items() if batch >= b) if batch >= min(TARGET_VS_FP32) else 1.0


def _task(recipe: dict, batch: int, device, data_dir):
    """The recipe's training data as ``nnlab train cnn`` builds it (random images when CIFAR-10 is missing)."""
    data = CifarDataConfig(**{**recipe.get("data", {}), "data_dir": data_dir})
    train = TrainConfig(**{**recipe["train"], "batch_size": batch, "progress": "off"})
    try:
        return load_cifar_task(data, train, device).train, "CIFAR-10"
    except DataError as e:
        print(f"note: {str(e).splitlines()[0][:120]}... using random images", file=sys.stderr)
    from nnlab.train.sources import ArraySource

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4096, 3, 32, 32), dtype=torch.uint8, generator=g).to(device)  # (N, 3, 32, 32)
    y = torch.randint(0, 10, (4096,), generator=g).to(device)
    return ArraySource(x, y, batch, 0, prepare=lambda xb, seed: db.normalize(xb, MEAN, STD)), "random images"


def _bare(optim: OptimConfig, device, *, bf16: bool, channels_last: bool, batches, library_conv: bool = False):
    """A closure running ``k`` bare training steps over ``batches`` (already normalised)."""
    torch.manual_seed(0)
    model = VGG(VGGConfig()).to(device)
    for m in model.modules():
        if isinstance(m, Conv3x3):
            m.patch_gradient = not library_conv
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
    opt = build_torch_optimizer(param_groups(model, optim), optim, device)
    state = {"i": 0}

    def steps(k: int):
        model.train()
        for _ in range(k):
            x, y = batches[state["i"] % len(batches)]
            state["i"] += 1
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x).float()  # (B, 10)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return steps


def bench_recipe(name: str, args, device, sync) -> tuple[dict, list]:
    r = resolve("cnn", name)
    batch = 8 if args.quick else r["train"]["batch_size"]
    src, data_name = _task(r, batch, device, args.data_dir)
    optim = OptimConfig(**r["optim"])
    train = TrainConfig(**{**r["train"], "batch_size": batch, "steps": 10**6, "device": str(device), "progress": "off"})
    torch.manual_seed(0)
    learner = TorchLearner(VGG(VGGConfig()), optim, ScheduleConfig(**r["schedule"]), train, total_steps=train.steps,
                           device=device, num_classes=10)
    bf16 = resolve_precision(True, device).autocast
    premade = [(db.normalize(src.x[i * batch:(i + 1) * batch], MEAN, STD), src.y[i * batch:(i + 1) * batch]) for i in range(4)]
    state = {"step": 0}

    def ours(k: int):
        for _ in range(k):
            epoch, index = divmod(state["step"], src.steps_per_epoch)
            x, y = src.batch(epoch, index)
            learner.train_step(x, y, state["step"])
            state["step"] += 1

    fns = {"ours": ours, "bare bf16+CL": _bare(optim, device, bf16=bf16, channels_last=True, batches=premade),
           "bare fp32": _bare(optim, device, bf16=False, channels_last=False, batches=premade),
           "bare bf16+CL, library conv": _bare(optim, device, bf16=bf16, channels_last=True, batches=premade,
                                               library_conv=True)}
    interleaved({k: (lambda f=f: f(1)) for k, f in fns.items()}, repeats=0, warmup=args.warmup, sync=sync)
    t = interleaved({k: (lambda f=f: f(args.steps)) for k, f in fns.items()}, repeats=args.repeats, warmup=0, sync=sync)
    ips = {k: batch * args.steps / median(v) for k, v in t.items()}
    rec = {"batch_size": batch, "data": data_name, "optimizer": r["optim"], "precision_ours": learner.precision,
           "channels_last_ours": train.channels_last, "steps_per_round": args.steps, "rounds": args.repeats,
           "ms_per_step": {k: stats([s / args.steps for s in v], 1e3, 1) for k, v in t.items()},
           "img_per_s": {k: round(v, 1) for k, v in ips.items()},
           "ours_over_bare_bf16": round(ips["ours"] / ips["bare bf16+CL"], 3),
           "paired_ours_over_bare_bf16": paired_ratio(t["bare bf16+CL"], t["ours"]),
           "ours_over_bare_fp32": round(ips["ours"] / ips["bare fp32"], 3),
           "paired_ours_over_bare_fp32": paired_ratio(t["bare fp32"], t["ours"]),
           "patch_gain": round(ips["bare bf16+CL"] / ips["bare bf16+CL, library conv"], 3),
           "paired_patch_gain": paired_ratio(t["bare bf16+CL, library conv"], t["bare bf16+CL"]),
           "target_vs_bare_bf16": TARGET_VS_BARE_BF16, "target_vs_fp32": _fp32_target(batch)}
    rec["met"] = bool(rec["ours_over_bare_bf16"] >= TARGET_VS_BARE_BF16 and rec["ours_over_bare_fp32"] >= rec["target_vs_fp32"])
    rows = [[f"{name}: {k}", median(t[k]) / args.steps * 1e3, ips[k], ips[k] / ips["bare bf16+CL"]] for k in fns]
    return rec, rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(ap, repeats=5, warmup=1)
    ap.add_argument("--data-dir", default=None, help="CIFAR-10 folder (default: $NNLAB_DATA_DIR, else ./data)")
    ap.add_argument("--recipes", default="seed,best", help="CNN recipes to measure (default seed,best)")
    ap.add_argument("--steps", type=int, default=4, help="training steps per contender per round (default 4)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    ap.add_argument("--quick", action="store_true", help="a smoke test of the script: tiny batches, 1 step, 1 round")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.warmup = 1, 1, 1
    device = resolve_device(args.device)
    if device.type == "cpu":
        set_cpu_threads_for_large_model()
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    info = machine_info()
    result, rows = {"device": str(device), "quick": args.quick}, []
    for name in args.recipes.split(","):
        result[name], r = bench_recipe(name, args, device, sync)
        rows += r
    print(f"VGG training throughput on {device}, torch threads {torch.get_num_threads()}, load {info.get('loadavg_1min_at_start')}"
          f" at start; median of {args.repeats} interleaved rounds of {args.steps} steps")
    print_table(["recipe: contender", "ms/step", "img/s", "x bare bf16+CL"], rows)
    for name in args.recipes.split(","):
        r = result[name]
        print(f"{name} (batch {r['batch_size']}, ours in {r['precision_ours']}): ours / bare bf16+CL = {r['ours_over_bare_bf16']:.3f} "
              f"(target >= {TARGET_VS_BARE_BF16}), ours / bare fp32 = {r['ours_over_bare_fp32']:.2f} "
              f"(target >= {r['target_vs_fp32']}): {'met' if r['met'] else 'MISSED'}; patch-matrix gradient of the "
              f"2 x 2 convs: {r['patch_gain']:.3f}x the library kernel")
    result["machine"] = info
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
