"""Numeric precision and CPU threads, decided once per run at the edge (like the device).

``--amp`` means the same on every device: bf16 autocast where the hardware computes bf16 natively, else fp32.

* CUDA: bf16 autocast when the GPU supports bf16 (Ampere and newer).
* CPU: bf16 autocast only when the processor has native bf16 instructions (x86 AVX512-BF16 or AMX-BF16; the
  flags in ``/proc/cpuinfo``). Without them oneDNN emulates bf16, which is slower than fp32, so nnlab runs fp32
  and says so once.
* MPS and anything else: fp32.

What bf16 gains over fp32 on a CPU with native bf16 is measured in benchmarks/RESULTS.md ("Part II").
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

#: /proc/cpuinfo flags of native bf16 arithmetic (x86): AVX512-BF16 (Cooper Lake, Zen 4+) and AMX (Sapphire Rapids+).
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
_said: set[str] = set()


@dataclass(frozen=True)
class Precision:
    autocast: bool  # run forward passes under torch.autocast(dtype=bfloat16)
    name: str  # "bf16-autocast" | "fp32", recorded in summary.json
    note: str | None = None  # why --amp fell back to fp32 (said once per process)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (``NNLAB_CPU_BF16=0|1`` overrides the detection)."""
    forced = os.environ.get("NNLAB_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    return any(flag in _cpu_flags() for flag in _BF16_CPU_FLAGS)


def resolve_precision(amp: bool, device) -> Precision:
    """What ``--amp`` means on ``device`` (a ``torch.device``)."""
    if not amp:
        return Precision(False, "fp32")
    if device.type == "cuda":
        import torch

        if torch.cuda.is_bf16_supported():
            return Precision(True, "bf16-autocast")
        return Precision(False, "fp32", "--amp: this GPU has no bf16 support; running in fp32")
    if device.type == "cpu":
        if cpu_has_native_bf16():
            return Precision(True, "bf16-autocast")
        return Precision(False, "fp32", "--amp: this CPU has no native bf16 (AVX512-BF16/AMX); running in fp32")
    return Precision(False, "fp32", f"--amp: no bf16 autocast on {device.type}; running in fp32")


def say_once(note: str | None) -> None:
    if note and note not in _said:
        _said.add(note)
        print(f"nnlab: {note}", file=sys.stderr)


def physical_cores() -> int:
    """Physical cores this process may run on (logical CPUs of the affinity mask, SMT siblings counted once)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return max(1, (os.cpu_count() or 2) // 2 if (os.cpu_count() or 1) > 1 else 1)
    cores = set()
    for cpu in allowed:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list", encoding="ascii") as f:
                cores.add(f.read().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def set_cpu_threads_for_large_model() -> int:
    """Intra-op threads = physical cores (SMT siblings share one core's FMA units: more threads only contend).

    A user's ``OMP_NUM_THREADS`` wins. Returns the thread count in force."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        n = physical_cores()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return torch.get_num_threads()
