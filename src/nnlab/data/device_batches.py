"""Batched image transforms on the training device: no per-sample Python, randomness from a generator.

The whole split lives on the device as one uint8 tensor ``(N, 3, H, W)`` (:func:`to_device_uint8`,
4x smaller than float32); each batch is then normalised (:func:`normalize`) and, for training,
augmented (:func:`random_crop_flip`) with a few tensor ops over the whole batch, as in airbench.
"""

from __future__ import annotations

from numbers import Integral
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["to_device_uint8", "normalize", "random_crop_flip"]


def to_device_uint8(x_np, device) -> torch.Tensor:
    """Copy a uint8 image array ``(N, C, H, W)`` (numpy or torch) to ``device``, keeping uint8."""
    if isinstance(x_np, torch.Tensor):
        x = x_np
    else:
        arr = np.asarray(x_np)
        if arr.dtype != np.uint8:
            raise TypeError(f"to_device_uint8 expects uint8 images, got dtype {arr.dtype}")
        if not arr.flags.writeable or not arr.flags.c_contiguous:  # e.g. a read-only memmap of the cache
            arr = np.array(arr, order="C", copy=True)
        x = torch.from_numpy(arr)
    if x.dtype != torch.uint8:
        raise TypeError(f"to_device_uint8 expects uint8 images, got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"to_device_uint8 expects images of shape (N, C, H, W), got {tuple(x.shape)}")
    return x.to(torch.device(device))


def normalize(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float], *,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(x / 255 - mean) / std`` per channel: uint8 ``(N, C, H, W)`` -> ``dtype`` ``(N, C, H, W)``.

    ``mean``/``std`` are per-channel figures for pixels scaled to [0, 1] (e.g. ``cifar10.MEAN``/``STD``).
    """
    if not isinstance(x_uint8, torch.Tensor) or x_uint8.dtype != torch.uint8:
        got = x_uint8.dtype if isinstance(x_uint8, torch.Tensor) else type(x_uint8).__name__
        raise TypeError(f"normalize expects a uint8 tensor, got {got}")
    if x_uint8.ndim != 4:
        raise ValueError(f"normalize expects images of shape (N, C, H, W), got {tuple(x_uint8.shape)}")
    c = x_uint8.shape[1]
    if len(mean) != c or len(std) != c or any(s <= 0 for s in std):
        raise ValueError(f"mean and std need {c} values (one per channel, std > 0), got mean={tuple(mean)}, std={tuple(std)}")
    # (x - 255 mean) / (255 std) == (x / 255 - mean) / std, one multiply fewer.
    m = torch.tensor(mean, dtype=dtype, device=x_uint8.device).mul_(255).view(1, c, 1, 1)  # (1, C, 1, 1)
    s = torch.tensor(std, dtype=dtype, device=x_uint8.device).mul_(255).view(1, c, 1, 1)
    return x_uint8.to(dtype).sub_(m).div_(s)  # (N, C, H, W)


def _reflect(idx: torch.Tensor, size: int) -> torch.Tensor:
    """Map indices in [-pad, size - 1 + pad] into [0, size) by reflection without repeating the edge."""
    idx = idx.abs()
    return torch.where(idx > size - 1, 2 * (size - 1) - idx, idx)


def random_crop_flip(x: torch.Tensor, *, pad: int = 4, flip: bool = True, generator: torch.Generator,
                     padding_mode: str = "constant") -> torch.Tensor:
    """Pad by ``pad`` pixels, crop a random ``H x W`` window, and flip left-right with probability 1/2.

    The standard CIFAR-10 augmentation, done for the whole batch ``x`` ``(N, C, H, W)`` (any dtype) in
    one gather: sample ``n``'s output pixel ``(i, j)`` is padded pixel ``(i + dy[n], j + dx[n])`` (with
    ``j`` mirrored as ``W - 1 - j`` when flipped). ``padding_mode``: "constant" (zeros, as
    torchvision's ``RandomCrop(32, padding=4)``) or "reflect" (airbench). Draws, in this order,
    ``dy``, ``dx`` (uniform in 0..2*pad) and the flips from ``generator`` on the generator's own
    device, so a CPU generator gives the same augmentation on every device.
    """
    problems = []
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        problems.append(f"x must be a tensor of shape (N, C, H, W), got {tuple(getattr(x, 'shape', ())) or type(x).__name__}")
    if isinstance(pad, bool) or not isinstance(pad, Integral) or pad < 0:
        problems.append(f"pad must be an integer >= 0 (pixels), got {pad!r}")
    if padding_mode not in ("constant", "reflect"):
        problems.append(f"unknown padding_mode {padding_mode!r}; valid: constant, reflect")
    if not isinstance(generator, torch.Generator):
        problems.append(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if not problems and padding_mode == "reflect" and pad >= min(x.shape[2], x.shape[3]):
        problems.append(f"reflect padding needs pad < image size, got pad={pad} for {tuple(x.shape[2:])}")
    if problems:
        raise ValueError("random_crop_flip: " + "; ".join(problems))
    n, c, h, w = x.shape
    if pad == 0 and not flip:
        return x.clone()
    dev = x.device
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(dev)  # (N,)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(dev)  # (N,)
    rows = torch.arange(h, device=dev)[None, :] + dy[:, None]  # (N, H) rows of the padded image
    cols = torch.arange(w, device=dev)[None, :] + dx[:, None]  # (N, W)
    if flip:
        flipped = torch.randint(0, 2, (n,), generator=generator, device=generator.device).to(dev).bool()  # (N,)
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    if padding_mode == "constant":
        src = F.pad(x, (pad, pad, pad, pad)) if pad else x  # (N, C, H + 2 pad, W + 2 pad), zeros around
    else:
        src = x  # index the unpadded image with reflected coordinates instead of materialising the pad
        rows, cols = _reflect(rows - pad, h), _reflect(cols - pad, w)
    # Advanced indices on dims 0, 2, 3 around the slice on dim 1 put the indexed dims first.
    out = src[torch.arange(n, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
