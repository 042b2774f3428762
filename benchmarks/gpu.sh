#!/usr/bin/env bash
# GPU checks of nnlab on a CUDA machine, in one script (sized to finish in <= 8 minutes on an H200).
#
#   benchmarks/gpu.sh OUT_DIR            run everything below, logs and JSON into OUT_DIR
#   benchmarks/gpu.sh OUT_DIR --cpu-check  the same script on a CPU with tiny settings (to test the script itself)
#
# Where the GPU machine cannot download CIFAR-10 and takes files only in small pieces (an upload size limit), the
# archive (163 MB) can be sent in parts under 64 MiB, moved out of the checkout as they arrive:
#   on the source machine:  benchmarks/gpu.sh split ARCHIVE   -> .cifar_parts/part-aa, -ab, -ac (git-ignored)
#   on the GPU machine:     after each upload: mkdir -p /tmp/cifar && mv .cifar_parts/part-* /tmp/cifar/
#                           then: cat /tmp/cifar/part-* > /tmp/cifar/cifar-10-python.tar.gz, and this script with
#                           NNLAB_DATA_DIR=/tmp/cifar (the official md5 is checked before anything trains).
#
# Steps, each bounded by `timeout` so that the script always ends and writes what it measured:
#   1. the CUDA-only tests (device-side augmentation, the RNN kernels on CUDA)
#   2. CNN throughput: `nnlab train cnn`'s step against a bare bf16 channels_last step (bench_cnn.py), and a bare
#      bf16 step at batch 512 (the GPU's ceiling for this network)
#   3. `nnlab train cnn --recipe best --device cuda` over seeds 0-2 (the recipe's own 14 epochs), and once with --epochs 40
#   4. `nnlab reproduce --budget full` on the GPU for the time left (T_REPRO s): it starts or continues the run, and
#      reproduce.json adds up the time of every call (rerun the script, or that command, until it is done)
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "split" ]; then
  archive=${2:?usage: benchmarks/gpu.sh split path/to/cifar-10-python.tar.gz}
  mkdir -p .cifar_parts && rm -f .cifar_parts/part-*
  split -b 60M "$archive" .cifar_parts/part-
  md5sum "$archive" && ls -l .cifar_parts
  exit 0
fi

OUT=${1:?usage: benchmarks/gpu.sh OUT_DIR [--cpu-check]}
CPU_CHECK=${2:-}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
DEV=cuda; LONG=40; SEEDS="0 1 2"; BUDGET=full; T_REPRO=330; TINY=""
if [ "$CPU_CHECK" = "--cpu-check" ]; then  # the script's own test on a CPU: every step, tiny settings
  DEV=cpu; LONG=1; SEEDS="0"; BUDGET=smoke; T_REPRO=120
  TINY="--steps 2 --eval-every 2 --train-subset 512 --val-size 256 --test-subset 256"
fi
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/gpu.log"; }
step() { local name=$1 limit=$2; shift 2; log "start $name (limit ${limit}s)"; local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  log "end $name rc=$rc wall=$((SECONDS - t0))s"; tail -n 5 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$OUT/gpu.log"; }

log "$($PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")')"
if [ "$DEV" = cuda ]; then
  step tests 90 $PY -m pytest -q -p no:cacheprovider tests/data/test_device_batches.py tests/models/test_rnn_models.py -k cuda
else
  step tests 90 $PY -m pytest -q -p no:cacheprovider tests/data/test_device_batches.py -k "not cuda" -x
fi
QUICK=""; [ "$CPU_CHECK" = "--cpu-check" ] && QUICK="--quick"
step bench_cnn 120 $PY benchmarks/bench_cnn.py --device "$DEV" --repeats 10 --steps 20 $QUICK --out "$OUT/bench_cnn.json"
step bare512 60 $PY - "$DEV" <<'PY'
import sys, time, torch
from nnlab.models.vgg import VGG, VGGConfig
dev = torch.device(sys.argv[1]); bs = 512 if dev.type == "cuda" else 8
m = VGG(VGGConfig()).to(dev).to(memory_format=torch.channels_last)
opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, fused=True)
x = torch.randn(bs, 3, 32, 32, device=dev).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (bs,), device=dev)
def step():
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(m(x).float(), y)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
for _ in range(5): step()
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
sync(); t = time.perf_counter(); n = 50 if dev.type == "cuda" else 2
for _ in range(n): step()
sync(); print(f"bare bf16 channels_last VGG step, batch {bs}: {n * bs / (time.perf_counter() - t):.0f} img/s")
PY
for s in $SEEDS; do
  step "cnn-best-s$s" 150 $PY -m nnlab train cnn --recipe best --device "$DEV" --seed "$s" \
       --progress off --out "$OUT/runs/cnn-best-s$s" $TINY
done
step cnn-best-long 200 $PY -m nnlab train cnn --recipe best --device "$DEV" --seed 0 --epochs "$LONG" \
     --progress off --out "$OUT/runs/cnn-best-e$LONG" $TINY
step reproduce "$T_REPRO" $PY -m nnlab reproduce --budget "$BUDGET" --progress off --out "$OUT/reproduce-$BUDGET"
$PY - "$OUT" <<'PY' | tee -a "$OUT/gpu.log"
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
runs = sorted(out.glob("runs/*/summary.json"))
for p in runs:
    s = json.loads(p.read_text())
    print(f"{p.parent.name}: test {100 * s['test_accuracy']:.2f}%  val {100 * (s.get('val_accuracy') or 0):.2f}%  "
          f"{s['wall_time_s']:.0f} s  {s.get('precision')}  {s.get('device')}")
accs = [json.loads(p.read_text())["test_accuracy"] for p in runs if p.parent.name.startswith("cnn-best-s")]
if len(accs) > 1:
    print(f"best recipe, {len(accs)} seeds: {100 * statistics.mean(accs):.2f} ± {100 * statistics.stdev(accs):.2f}")
rj = out.glob("reproduce-*/reproduce.json")
for p in rj:
    r = json.loads(p.read_text())
    print(f"reproduce {r['budget']}: {r['elapsed_s']:.0f} s in sections; " +
          ", ".join(f"{k} {v['status']}" for k, v in r["sections"].items()))
PY
