"""Batched device transforms: exact against per-sample references, deterministic given the generator."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnlab.data.cifar10 import MEAN, STD
from nnlab.data.device_batches import normalize, random_crop_flip, to_device_uint8

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _images(n=16, c=3, h=8, w=10, seed=0, dtype=torch.int64):
    """Images whose pixels are all distinct, so a crop identifies its window uniquely."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randperm(n * c * h * w, generator=g).reshape(n, c, h, w) + 1  # 1.. (0 is the padding)
    return x.to(dtype)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------- to_device_uint8


@pytest.mark.parametrize("device", DEVICES)
def test_to_device_uint8(device):
    x = np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    t = to_device_uint8(x, device)
    assert t.dtype == torch.uint8 and t.shape == (4, 3, 32, 32) and t.device.type == device
    assert np.array_equal(t.cpu().numpy(), x)
    assert to_device_uint8(torch.from_numpy(x), device).dtype == torch.uint8


def test_to_device_uint8_from_a_read_only_memmap(tmp_path):
    x = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on non-writable arrays; we copy instead
        t = to_device_uint8(mm, "cpu")
    assert np.array_equal(t.numpy(), x)
    t += 1  # the tensor owns writable memory, the cache file is untouched
    assert np.array_equal(np.load(tmp_path / "x.npy"), x)


def test_to_device_uint8_rejects_other_dtypes_and_shapes():
    with pytest.raises(TypeError, match="uint8"):
        to_device_uint8(np.zeros((1, 3, 2, 2), dtype=np.float32), "cpu")
    with pytest.raises(TypeError, match="uint8"):
        to_device_uint8(torch.zeros((1, 3, 2, 2)), "cpu")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        to_device_uint8(np.zeros((3, 2, 2), dtype=np.uint8), "cpu")


# ---------------------------------------------------------------------------------------------- normalize


@pytest.mark.parametrize("device", DEVICES)
def test_normalize_matches_the_formula(device):
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (5, 3, 4, 6), dtype=np.uint8)).to(device)
    out = normalize(x, MEAN, STD)
    assert out.dtype == torch.float32 and out.shape == x.shape and out.device == x.device
    ref = (x.double().cpu() / 255 - torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(out.double().cpu(), ref, rtol=1e-6, atol=1e-6)
    assert normalize(x, MEAN, STD, dtype=torch.float64).dtype == torch.float64
    assert x.dtype == torch.uint8  # input untouched


def test_normalize_validates():
    x = torch.zeros((2, 3, 4, 4), dtype=torch.uint8)
    with pytest.raises(TypeError, match="uint8"):
        normalize(x.float(), MEAN, STD)
    with pytest.raises(ValueError, match="3 values"):
        normalize(x, MEAN[:2], STD)
    with pytest.raises(ValueError, match="std > 0"):
        normalize(x, MEAN, (0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        normalize(x[0], MEAN, STD)


# ---------------------------------------------------------------------------------------------- random_crop_flip


def _match_window(out_n, padded_n, h, w, flips=(False, True)):
    """Every (dy, dx, flipped) whose window of the padded image equals out_n."""
    hits = []
    for dy in range(padded_n.shape[1] - h + 1):
        for dx in range(padded_n.shape[2] - w + 1):
            win = padded_n[:, dy:dy + h, dx:dx + w]
            for f in flips:
                if torch.equal(out_n, win.flip(-1) if f else win):
                    hits.append((dy, dx, f))
    return hits


@pytest.mark.parametrize("padding_mode", ["constant", "reflect"])
def test_each_crop_is_a_window_of_the_padded_image(padding_mode):
    pad = 2
    x = _images(n=40)
    out = random_crop_flip(x, pad=pad, flip=True, generator=_gen(0), padding_mode=padding_mode)
    assert out.shape == x.shape and out.dtype == x.dtype and out.is_contiguous()
    padded = F.pad(x.double(), (pad,) * 4, mode=padding_mode).to(x.dtype)  # torch's own padding as the oracle
    seen = set()
    for n in range(len(x)):
        hits = _match_window(out[n], padded[n], 8, 10)
        assert len(hits) == 1, (n, hits)  # distinct pixels: exactly one window and orientation
        seen.add(hits[0])
    assert {f for _, _, f in seen} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in seen}) > 5  # offsets vary across the batch


def test_no_flip_means_never_flipped_and_zero_pad_flip_only_flips():
    x = _images(n=40)
    out = random_crop_flip(x, pad=3, flip=False, generator=_gen(1))
    padded = F.pad(x, (3,) * 4)
    for n in range(len(x)):
        assert len(_match_window(out[n], padded[n], 8, 10, flips=(False,))) == 1
    out = random_crop_flip(x, pad=0, flip=True, generator=_gen(2))
    flipped = torch.tensor([torch.equal(out[n], x[n].flip(-1)) for n in range(len(x))])
    kept = torch.tensor([torch.equal(out[n], x[n]) for n in range(len(x))])
    assert torch.all(flipped ^ kept) and 5 < int(flipped.sum()) < 35  # each sample one or the other, both occur
    assert torch.equal(random_crop_flip(x, pad=0, flip=False, generator=_gen(3)), x)


def test_offsets_and_flips_are_uniform():
    x = _images(n=1, h=4, w=4).expand(4000, -1, -1, -1).contiguous()
    out = random_crop_flip(x, pad=1, flip=True, generator=_gen(4))
    padded = F.pad(x[0], (1,) * 4)
    keys = {}
    for dy in range(3):
        for dx in range(3):
            win = padded[:, dy:dy + 4, dx:dx + 4]
            keys[(dy, dx, False)], keys[(dy, dx, True)] = win, win.flip(-1)
    counts = {k: int((out == v).flatten(1).all(1).sum()) for k, v in keys.items()}
    assert sum(counts.values()) == 4000
    expected = 4000 / 18
    assert all(abs(c - expected) < 5 * expected**0.5 for c in counts.values()), counts


def test_deterministic_given_the_generator():
    x = _images(n=64).remainder(256).to(torch.uint8)
    a = random_crop_flip(x, generator=_gen(7))
    b = random_crop_flip(x, generator=_gen(7))
    c = random_crop_flip(x, generator=_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = _gen(7)
    first, second = random_crop_flip(x, generator=g), random_crop_flip(x, generator=g)
    assert torch.equal(first, a) and not torch.equal(second, a)  # the generator advances


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float16])
def test_any_dtype_and_input_untouched(dtype):
    x = _images(n=8).remainder(256).to(dtype)
    before = x.clone()
    out = random_crop_flip(x, generator=_gen(0))
    assert out.dtype == dtype and out.shape == x.shape
    assert torch.equal(x, before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_augmentation_on_cuda_with_a_cpu_generator():
    x = _images(n=32).remainder(256).to(torch.uint8)
    cpu = random_crop_flip(x, generator=_gen(5))
    gpu = random_crop_flip(x.cuda(), generator=_gen(5))
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
    gpu_r = random_crop_flip(x.cuda(), generator=_gen(5), padding_mode="reflect")
    assert torch.equal(gpu_r.cpu(), random_crop_flip(x, generator=_gen(5), padding_mode="reflect"))


def test_validates_arguments():
    x = _images(n=2)
    for kwargs, match in [({"pad": -1}, "pad must be"), ({"pad": 1.5}, "pad must be"),
                          ({"padding_mode": "edge"}, "valid: constant, reflect"),
                          ({"pad": 8, "padding_mode": "reflect"}, "reflect padding needs pad < image size")]:
        with pytest.raises(ValueError, match=match):
            random_crop_flip(x, generator=_gen(0), **kwargs)
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        random_crop_flip(x, generator=0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_crop_flip(x[0], generator=_gen(0))
    with pytest.raises(TypeError):
        random_crop_flip(x)  # the generator is required: randomness is explicit
