"""Where a training step of the report's VGG spends its time: each conv layer's speed, and the step's ops by kind.

Two tables, for the precision and memory format ``nnlab train cnn`` uses on this device (bf16 autocast +
channels_last where the CPU has native bf16, else fp32):

  layers   each conv of the network alone (the model's own ``Conv3x3`` with BatchNorm and ReLU left out), at the
           batch size asked for: forward, and forward + backward (input and weight gradients; the first conv has no
           input gradient), in ms and in GFLOP/s (2 multiply-adds per MAC, as the layer's output size x 9 x C_in;
           on 2 x 2 maps this counts the padding taps too, as the conv kernel computes them)
  step     one training step of the whole network (``torch.profiler`` over ``--steps`` steps after ``--warmup``;
           self CPU time summed by op kind: conv forward, conv backward, BatchNorm, ReLU, max-pool, the optimizer,
           casts and copies, the rest)

A step that is mostly conv arithmetic running near the machine's rate can be made faster only by doing less of it.
Layer timings are medians over ``--repeats`` interleaved rounds (every layer's two calls once per round, in rotated
order) after ``--warmup`` untimed rounds. Check the machine is idle first (``uptime``); the load average is recorded
beside the figures.

Usage: python benchmarks/profile_cnn.py [--batch 128] [--repeats 7] [--warmup 2] [--device cpu] [--out prof.json]
"""

from __future__ import annotations

import argparse

import torch
from torch.nn import functional as F

from _common import emit, interleaved, machine_info, median, print_table

from nnlab.models.conv import Conv3x3
from nnlab.models.vgg import VGG, VGGConfig
from nnlab.train.learners import resolve_device
from nnlab.train.precision import resolve_precision, set_cpu_threads_for_large_model

#: Op-name fragments of each kind in the step table (first match wins); anything else is "other".
KINDS = (("conv backward", ("convolution_backward", "mm", "SmallMapConvBackward")),
         ("conv forward", ("convolution", "SmallMapConv")),
         ("BatchNorm", ("batch_norm",)),
         ("ReLU", ("relu", "threshold", "clamp_min")),
         ("max-pool", ("max_pool",)),
         ("optimizer", ("Optimizer", "_foreach", "sgd", "adam")),
         ("casts and copies", ("copy_", "_to_copy", "to", "contiguous", "fill_", "zero_", "empty")))


def conv_layers(cfg: VGGConfig, size: int = 32) -> list[tuple[int, int, int]]:
    """(C_in, C_out, side) of each conv of the network, input to output."""
    out, c, s = [], cfg.in_channels, size
    for t in cfg.layers:
        if t == "M":
            s = (s - 3 + 2) // 2 + 1
        else:
            out.append((c, t, s))
            c = t
    return out


def layer_table(batch: int, device, autocast: bool, channels_last: bool, repeats: int, warmup: int, sync) -> list[dict]:
    """Every layer's forward and forward + backward, timed in the same interleaved rounds (``_common.interleaved``)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    calls, sizes = {}, {}
    for c_in, c_out, s in conv_layers(VGGConfig()):
        torch.manual_seed(0)
        conv = Conv3x3(c_in, c_out).to(device).to(memory_format=fmt)
        x = torch.randn(batch, c_in, s, s, device=device).contiguous(memory_format=fmt)
        x.requires_grad_(c_in != 3)  # the first conv's input is the image: no input gradient
        g = torch.randn(batch, c_out, s, s, device=device).contiguous(memory_format=fmt)

        def fwd(conv=conv, x=x):
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                conv(x)

        def fwd_bwd(conv=conv, x=x, g=g):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                out = conv(x)
            out.backward(g)

        name = f"conv {c_in}->{c_out} on {s} x {s}"
        name = name if name not in sizes else f"{name} ({sum(n.startswith(name) for n in sizes) + 1})"
        calls[(name, "fwd")], calls[(name, "fwd_bwd")] = fwd, fwd_bwd
        # MACs, and passes in forward + backward: forward, input gradient (not for the image), weight gradient
        sizes[name] = (batch * s * s * c_in * c_out * 9, 3 if c_in != 3 else 2)
    t = interleaved(calls, repeats=repeats, warmup=warmup, sync=sync)
    rows = []
    for name, (macs, passes) in sizes.items():
        t_f, t_fb = median(t[(name, "fwd")]), median(t[(name, "fwd_bwd")])
        rows.append({"layer": name, "fwd_ms": t_f * 1e3, "fwd_gflops": 2 * macs / t_f / 1e9, "fwd_bwd_ms": t_fb * 1e3,
                     "fwd_bwd_gflops": 2 * passes * macs / t_fb / 1e9})
    return rows


def step_table(batch: int, device, autocast: bool, channels_last: bool, steps: int, warmup: int) -> tuple[list, float]:
    torch.manual_seed(0)
    model = VGG(VGGConfig()).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x).float()
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    totals: dict[str, float] = {}
    for ev in prof.key_averages():
        if ev.key.startswith("autograd::") or ev.key.startswith("ProfilerStep"):
            continue
        kind = next((k for k, frags in KINDS if any(f in ev.key for f in frags)), "other")
        totals[kind] = totals.get(kind, 0.0) + ev.self_cpu_time_total / 1e3 / steps  # ms per step
    total = sum(totals.values())
    rows = [{"kind": k, "ms_per_step": v, "share": v / total} for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]
    return rows, total


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=128, help="batch size (default 128, the best recipe's)")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds over the layers (default 7)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first, and untimed steps (default 2)")
    ap.add_argument("--steps", type=int, default=3, help="profiled training steps (default 3)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    ap.add_argument("--out", default=None, help="also write the JSON record to this file")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    if device.type == "cpu":
        set_cpu_threads_for_large_model()
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    info = machine_info()
    prec = resolve_precision(True, device)
    layers = layer_table(args.batch, device, prec.autocast, True, args.repeats, args.warmup, sync)
    steps, total = step_table(args.batch, device, prec.autocast, True, args.steps, args.warmup)
    print(f"VGG conv layers on {device}, {prec.name}, channels_last, batch {args.batch}, torch threads "
          f"{torch.get_num_threads()}, load {info.get('loadavg_1min_at_start')} at start")
    print_table(["layer", "fwd ms", "fwd GFLOP/s", "fwd+bwd ms", "fwd+bwd GFLOP/s"],
                [[r["layer"], r["fwd_ms"], r["fwd_gflops"], r["fwd_bwd_ms"], r["fwd_bwd_gflops"]] for r in layers])
    print(f"\none training step (profiled, self CPU time by op kind; {total:.1f} ms a step under the profiler)")
    print_table(["kind", "ms/step", "share"], [[r["kind"], r["ms_per_step"], r["share"]] for r in steps])
    result = {"device": str(device), "precision": prec.name, "batch_size": args.batch, "layers": layers,
              "step": steps, "step_ms_profiled": total, "machine": info}
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
