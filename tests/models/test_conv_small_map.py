"""models/conv.py: Conv3x3 is nn.Conv2d(3, padding 1) in value and gradient, fast path or not."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nnlab.models.conv import Conv3x3, _SmallMapConv, patches
from nnlab.models.vgg import VGG


def _grads(module_or_fn, x, weight, bias, g):
    x = x.detach().clone().requires_grad_()
    w = weight.detach().clone().requires_grad_()
    b = bias.detach().clone().requires_grad_()
    out = module_or_fn(x, w, b)
    out.backward(g)
    return out.detach(), x.grad, w.grad, b.grad


@pytest.mark.parametrize("hw", [(2, 2), (1, 2), (1, 1)])
def test_patch_gradient_matches_conv2d_in_float64(hw):
    torch.manual_seed(0)
    conv = Conv3x3(6, 5).double()
    x = torch.randn(3, 6, *hw, dtype=torch.float64)
    assert conv.uses_patch_gradient(x)
    g = torch.randn(3, 5, *hw, dtype=torch.float64)

    def ours(x, w, b):
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(b)
        conv.zero_grad()
        out = conv(x)
        return out

    out, gx, _, _ = _grads(ours, x, conv.weight, conv.bias, g)
    ref = _grads(lambda x, w, b: F.conv2d(x, w, b, padding=1), x, conv.weight, conv.bias, g)
    torch.testing.assert_close(out, ref[0])
    torch.testing.assert_close(gx, ref[1])
    torch.testing.assert_close(conv.weight.grad, ref[2])
    torch.testing.assert_close(conv.bias.grad, ref[3])


def test_gradcheck_of_the_patch_gradient():
    """Finite differences against the custom backward (x, weight and bias gradients)."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_SmallMapConv.apply, (x, w, b))


def test_patches_layout():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    p = patches(x)
    assert p.shape == (2 * 2 * 2, 9 * 3)
    # pixel (b=0, h=0, w=0): the centre tap (kh=1, kw=1) holds x[0, :, 0, 0]; the top-left tap is padding
    assert torch.equal(p[0].view(3, 3, 3)[1, 1], x[0, :, 0, 0])
    assert torch.equal(p[0].view(3, 3, 3)[0, 0], torch.zeros(3))
    # pixel (b=1, h=1, w=1): the top-left tap holds x[1, :, 0, 0]
    assert torch.equal(p[7].view(3, 3, 3)[0, 0], x[1, :, 0, 0])


def test_bf16_autocast_channels_last_close_to_conv2d():
    torch.manual_seed(2)
    conv = Conv3x3(32, 16).to(memory_format=torch.channels_last)
    ref = nn.Conv2d(32, 16, 3, padding=1).to(memory_format=torch.channels_last)
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(8, 32, 2, 2).contiguous(memory_format=torch.channels_last)
    g = torch.randn(8, 16, 2, 2)
    for m in (conv, ref):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(x)
        assert out.dtype == torch.bfloat16
        out.float().backward(g)
    torch.testing.assert_close(conv.weight.grad, ref.weight.grad, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(conv.bias.grad, ref.bias.grad, rtol=2e-2, atol=2e-2)
    assert conv.weight.grad.shape == conv.weight.shape


def test_large_maps_and_eval_use_the_plain_conv():
    conv = Conv3x3(4, 4)
    assert not conv.uses_patch_gradient(torch.zeros(1, 4, 4, 4))
    with torch.no_grad():
        assert not conv.uses_patch_gradient(torch.zeros(1, 4, 2, 2))


def test_vgg_training_step_equals_a_plain_conv2d_vgg():
    """Same weights, same batch: the loss and every gradient agree with nn.Conv2d layers (float64)."""
    torch.manual_seed(3)
    ours = VGG().double()
    plain = VGG().double()
    for i, block in enumerate(plain.features):
        if isinstance(block, nn.Sequential):
            c = block[0]
            block[0] = nn.Conv2d(c.in_channels, c.out_channels, 3, padding=1, bias=c.bias is not None).double()
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    for m in (ours, plain):
        F.cross_entropy(m(x), y).backward()
    for (name, p), q in zip(ours.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_patch_gradient_can_be_switched_off():
    conv = Conv3x3(4, 4)
    x = torch.zeros(1, 4, 2, 2)
    assert conv.uses_patch_gradient(x)
    conv.patch_gradient = False
    assert not conv.uses_patch_gradient(x)
