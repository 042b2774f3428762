"""A 3 x 3 convolution (stride 1, padding 1) whose weight gradient is one matrix product on small maps.

The report's VGG ends with four convs on 4 x 4 and 2 x 2 maps (512 channels). On a CPU, the library
convolution computes the *weight* gradient of such small maps slowly: at batch 256 in bf16, 71 ms for a
512 -> 512 conv on 2 x 2 maps where the forward pass takes 17 ms (benchmarks/RESULTS.md, "Part II").
The same gradient is a single matrix product over the image patches ("im2col"):

    grad_W[o, (kh, kw, c)] = sum over (b, h, w) of grad_out[b, o, h, w] * x_pad[b, c, h + kh, w + kw]

i.e. ``grad_out`` viewed as ``(B*H*W, O)``, transposed, times the patches ``(B*H*W, 9*C)``. ``Conv3x3`` is an
``nn.Conv2d`` (same parameters, state dict, initialisation and forward) that computes its backward pass this
way when the map is small and the tensors live on a CPU; elsewhere it is exactly ``nn.Conv2d``. The model,
its numbers and its checkpoints do not change, only how fast its weight gradient is computed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Maps of at most this many pixels (2 x 2) use the patch-matrix weight gradient on a CPU. On 4 x 4 maps the
#: library's kernel is as fast (measured: benchmarks/RESULTS.md, "Part II").
SMALL_MAP_PIXELS = 4


def patches(x: torch.Tensor) -> torch.Tensor:
    """The 3 x 3 neighbourhoods of every pixel of ``x`` (B, C, H, W), zero-padded: ``(B*H*W, 9*C)``.

    Column order is (kh, kw, c), so ``grad_out.T @ patches(x)`` reshapes to ``(O, 3, 3, C)``.
    """
    b, c, h, w = x.shape
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))  # (B, H+2, W+2, C)
    taps = [xp[:, dh:dh + h, dw:dw + w, :] for dh in range(3) for dw in range(3)]
    return torch.stack(taps, dim=3).reshape(b * h * w, 9 * c)


class _SmallMapConv(torch.autograd.Function):
    """conv2d(x, weight, bias, padding=1) with the weight gradient as one matrix product."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, padding=1)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            o = weight.shape[0]
            g = grad_out.permute(0, 2, 3, 1).reshape(-1, o)  # (B*H*W, O)
            # (O, 3, 3, C) viewed as (O, C, 3, 3): the channels_last layout; autograd copies it if needed
            grad_w = (g.t() @ patches(x)).view(o, 3, 3, -1).permute(0, 3, 1, 2)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b


class Conv3x3(nn.Conv2d):
    """``nn.Conv2d(c_in, c_out, 3, stride=1, padding=1)``; on a CPU, small maps get the fast weight gradient."""

    def __init__(self, c_in: int, c_out: int, bias: bool = True):
        super().__init__(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=bias)
        self.patch_gradient = True  # False: always the library's kernel (benchmarks compare the two)

    def uses_patch_gradient(self, x: torch.Tensor) -> bool:
        return (self.patch_gradient and x.device.type == "cpu" and torch.is_grad_enabled() and self.weight.requires_grad
                and x.shape[-2] * x.shape[-1] <= SMALL_MAP_PIXELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.uses_patch_gradient(x):
            return super().forward(x)
        weight, bias = self.weight, self.bias
        if torch.is_autocast_enabled("cpu"):  # cast as autocast would for conv2d, then run without it
            dtype = torch.get_autocast_dtype("cpu")
            x, weight = x.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
            with torch.autocast("cpu", enabled=False):
                return _SmallMapConv.apply(x, weight, bias)
        return _SmallMapConv.apply(x, weight, bias)
