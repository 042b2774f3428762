"""The reduced VGG against the report's Part II table: shapes, layer types, parameter count, init, config."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nnlab.errors import ConfigError
from nnlab.models.vgg import VGG, VGGConfig

# The report's table (Part II, Task 1): output shape after every layer for a batch of 32.
REPORT_SHAPES = [
    [32, 64, 32, 32],   # conv 3 -> 64
    [32, 64, 16, 16],   # max pool
    [32, 128, 16, 16],  # conv 64 -> 128
    [32, 128, 8, 8],    # max pool
    [32, 256, 8, 8],    # conv 128 -> 256
    [32, 256, 8, 8],    # conv 256 -> 256
    [32, 256, 4, 4],    # max pool
    [32, 512, 4, 4],    # conv 256 -> 512
    [32, 512, 4, 4],    # conv 512 -> 512
    [32, 512, 2, 2],    # max pool
    [32, 512, 2, 2],    # conv 512 -> 512
    [32, 512, 2, 2],    # conv 512 -> 512
    [32, 512, 1, 1],    # max pool
    [32, 10],           # linear 512 -> 10
]
# (C_in, C_out) of the table's eight conv rows.
REPORT_CONVS = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]


def _hand_count(conv_bias: bool) -> int:
    """Parameters from the table: conv k*k*C_in*C_out (+ C_out bias), BN 2*C_out (gamma, beta), linear 512*10+10."""
    total = 0
    for c_in, c_out in REPORT_CONVS:
        total += 3 * 3 * c_in * c_out + (c_out if conv_bias else 0) + 2 * c_out
    return total + 512 * 10 + 10


@pytest.fixture(scope="module")
def model() -> VGG:
    torch.manual_seed(0)
    return VGG(VGGConfig()).eval()


def test_layer_shapes_match_report_table(model):
    shapes = []
    layers = list(model.features.children()) + [model.classifier]
    handles = [m.register_forward_hook(lambda _m, _i, out: shapes.append(list(out.shape))) for m in layers]
    try:
        with torch.no_grad():
            logits = model(torch.randn(32, 3, 32, 32))
    finally:
        for h in handles:
            h.remove()
    assert shapes == REPORT_SHAPES
    assert list(logits.shape) == [32, 10]


def test_layer_types_match_report_table(model):
    rows = list(model.features.children())
    assert len(rows) == 13
    convs = []
    for row in rows:
        if isinstance(row, nn.MaxPool2d):
            assert (row.kernel_size, row.stride, row.padding) == (3, 2, 1)
            continue
        conv, bn, relu = row  # each "conv" row: Conv2d + BatchNorm2d + ReLU, in that order
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and isinstance(relu, nn.ReLU)
        assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (1, 1), (1, 1))
        assert bn.num_features == conv.out_channels
        convs.append((conv.in_channels, conv.out_channels))
    assert convs == REPORT_CONVS
    assert (model.classifier.in_features, model.classifier.out_features) == (512, 10)


def test_parameter_count_matches_hand_formula():
    assert _hand_count(True) == 9_231_114  # the number written in the module docstring
    assert VGG(VGGConfig()).num_parameters() == _hand_count(True)
    m = VGG(VGGConfig(conv_bias=False))
    assert m.num_parameters() == _hand_count(False) == 9_231_114 - sum(c for _, c in REPORT_CONVS)
    assert all(mod.bias is None for mod in m.modules() if isinstance(mod, nn.Conv2d))


def test_kaiming_init_and_seeded_generator():
    m = VGG(VGGConfig(), generator=torch.Generator().manual_seed(1))
    conv = m.features[-2][0]  # the last 512 -> 512 conv: 2.36M weights, so the sample std is tight
    expected = math.sqrt(2.0 / (512 * 3 * 3))  # Kaiming normal, fan_out, ReLU gain sqrt(2)
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.01)
    assert conv.weight.mean().item() == pytest.approx(0.0, abs=0.01 * expected)
    assert torch.count_nonzero(conv.bias) == 0
    assert m.classifier.weight.std().item() == pytest.approx(0.01, rel=0.05)
    torch.manual_seed(123)  # the global RNG must not matter once a generator is given
    m2 = VGG(VGGConfig(), generator=torch.Generator().manual_seed(1))
    for (n1, p1), (n2, p2) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1


def test_channels_last_gives_same_logits(model):
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        m_cl = VGG(VGGConfig()).eval()
        m_cl.load_state_dict(model.state_dict())
        m_cl = m_cl.to(memory_format=torch.channels_last)
        out = m_cl(x.contiguous(memory_format=torch.channels_last))
    assert out.shape == (4, 10)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_backward_reaches_every_parameter():
    m = VGG(VGGConfig(layers=(8, "M", 16, "M", "M", "M", "M"), num_classes=3))
    loss = nn.functional.cross_entropy(m(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_config_from_json_list_is_coerced_to_tuple():
    cfg = VGGConfig(layers=[64, "M", 128, "M"])
    assert cfg.layers == (64, "M", 128, "M") and hash(cfg)
    assert cfg.feature_channels == 128


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"layers": (64, "X", 128)}, "unknown layer token 'X' at layers[1]"),
        ({"layers": (64, 0)}, "unknown layer token 0"),
        ({"layers": (64, True)}, "unknown layer token True"),
        ({"layers": ()}, "non-empty"),
        ({"layers": ("M", "M")}, "at least one conv"),
        ({"num_classes": 0}, "num_classes must be a positive integer, got 0"),
        ({"in_channels": -1}, "in_channels must be a positive integer, got -1"),
        ({"conv_bias": "yes"}, "conv_bias must be True or False"),
    ],
)
def test_bad_config_raises_config_error(kwargs, fragment):
    with pytest.raises(ConfigError, match="invalid VGG config") as info:
        VGGConfig(**kwargs)
    assert fragment in str(info.value)


def test_bad_config_lists_every_problem_and_valid_tokens():
    with pytest.raises(ConfigError) as info:
        VGGConfig(layers=(64, "pool"), num_classes=0)
    msg = str(info.value)
    assert "'pool'" in msg and "'M'" in msg and "num_classes" in msg


def test_input_that_does_not_reduce_to_one_pixel_is_rejected():
    m = VGG(VGGConfig())
    with pytest.raises(ValueError, match=r"got input \(1, 3, 64, 64\)"):
        m(torch.randn(1, 3, 64, 64))
