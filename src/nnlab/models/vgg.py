"""Part II: the report's reduced VGG for CIFAR-10 (32 x 32 RGB images, 10 classes).

The report's table (Part II, Task 1), batch 32, input ``[32, 3, 32, 32]``:

    conv 3->64     [32, 64, 32, 32]      pool  [32, 64, 16, 16]
    conv 64->128   [32, 128, 16, 16]     pool  [32, 128, 8, 8]
    conv 128->256  [32, 256, 8, 8]       conv 256->256  [32, 256, 8, 8]    pool  [32, 256, 4, 4]
    conv 256->512  [32, 512, 4, 4]       conv 512->512  [32, 512, 4, 4]    pool  [32, 512, 2, 2]
    conv 512->512  [32, 512, 2, 2]       conv 512->512  [32, 512, 2, 2]    pool  [32, 512, 1, 1]
    linear 512->10 [32, 10]

Each "conv" is Conv2d(3 x 3, stride 1, padding 1) + BatchNorm2d + ReLU; each pool is
MaxPool2d(kernel 3, stride 2, padding 1), which halves the side: W2 = (W1 - 3 + 2) // 2 + 1.
Five pools take 32 -> 16 -> 8 -> 4 -> 2 -> 1, so the flattened features are exactly the last conv's
channels (512) and the classifier is a single Linear(512, 10) that returns logits.

With the default config (``conv_bias=True``) the model has 9,231,114 trainable parameters.

``channels_last`` needs nothing special: ``model.to(memory_format=torch.channels_last)`` and inputs
converted the same way run through the same modules (the flatten happens on a ``(B, C, 1, 1)`` tensor,
where both memory formats hold the same order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral

import torch
from torch import nn

from .._validate import positive_int
from ..errors import check
from .conv import Conv3x3

#: The layer token that stands for a max-pooling layer; every other token is a conv's output channels.
POOL = "M"


@dataclass(frozen=True)
class VGGConfig:
    layers: tuple = field(
        default=(64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
        metadata={"help": "feature layers in order: an int is a conv block's output channels, "
                          "'M' is MaxPool2d(3, stride 2, padding 1) (default: the report's table)"},
    )
    num_classes: int = field(default=10, metadata={"help": "number of output logits (CIFAR-10: 10)"})
    in_channels: int = field(default=3, metadata={"help": "channels of the input images (RGB: 3)"})
    conv_bias: bool = field(
        default=True,
        metadata={"help": "give each Conv2d a bias; the report's layers (and torchvision's vgg*_bn) keep it, "
                          "although the BatchNorm that follows makes it redundant (False saves 2,752 parameters)"},
    )

    def __post_init__(self):
        # A config read back from config.json holds a list: store a tuple so the config stays hashable.
        if isinstance(self.layers, list):
            object.__setattr__(self, "layers", tuple(self.layers))
        problems = []
        if not isinstance(self.layers, tuple) or not self.layers:
            problems.append(f"layers must be a non-empty sequence of positive ints and {POOL!r}, got {self.layers!r}")
        else:
            for i, token in enumerate(self.layers):
                if token == POOL:
                    continue
                if isinstance(token, bool) or not isinstance(token, Integral) or token <= 0:
                    problems.append(
                        f"unknown layer token {token!r} at layers[{i}]; valid: a positive int (conv output "
                        f"channels) or {POOL!r} (max pooling)"
                    )
            if not problems and not any(t != POOL for t in self.layers):
                problems.append(f"layers must hold at least one conv (a positive int), got {self.layers!r}")
        problems += [positive_int("num_classes", self.num_classes), positive_int("in_channels", self.in_channels)]
        if not isinstance(self.conv_bias, bool):
            problems.append(f"conv_bias must be True or False, got {self.conv_bias!r}")
        check([p for p in problems if p], what="VGG config")

    @property
    def feature_channels(self) -> int:
        """Channels of the last conv, i.e. the classifier's input size once the map is 1 x 1."""
        return [t for t in self.layers if t != POOL][-1]


def _conv_block(c_in: int, c_out: int, bias: bool) -> nn.Sequential:
    """The report's "conv" layer: 2D-CONV (3 x 3, stride 1, padding 1) + BatchNorm2d + ReLU; keeps H, W."""
    return nn.Sequential(
        Conv3x3(c_in, c_out, bias=bias),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class VGG(nn.Module):
    """The report's reduced VGG; ``forward`` maps images ``(B, C, H, W)`` to logits ``(B, num_classes)``.

    ``features`` holds one child per row of the report's table (a conv block or a pool), so forward hooks
    on ``features`` children and on ``classifier`` give exactly the table's shapes.

    Initialisation follows torchvision's ``VGG`` (torchvision/models/vgg.py): convs get Kaiming-normal
    weights for ReLU with ``mode="fan_out"`` (He et al. 2015, "Delving Deep into Rectifiers",
    std = sqrt(2 / (C_out * 3 * 3))) and zero biases; BatchNorm starts at weight 1, bias 0; the linear
    layer gets N(0, 0.01) weights and a zero bias. All of it draws from ``generator`` when given (else
    from torch's global RNG), so a seeded generator gives identical weights.
    """

    def __init__(self, config: VGGConfig | None = None, *, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config = VGGConfig() if config is None else config
        if not isinstance(config, VGGConfig):
            raise TypeError(f"VGG expects a VGGConfig, got {type(config).__name__}")
        blocks: list[nn.Module] = []
        c_in = config.in_channels
        for token in config.layers:
            if token == POOL:
                blocks.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))  # H, W -> ceil(H / 2)
            else:
                blocks.append(_conv_block(c_in, int(token), config.conv_bias))
                c_in = int(token)
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(c_in, config.num_classes)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
                m.reset_running_stats()
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01, generator=generator)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, C_in, H, W) -> (B, 512, 1, 1) for 32 x 32 inputs
        if h.shape[-2:] != (1, 1):
            raise ValueError(
                f"VGG expects inputs that its {sum(t == POOL for t in self.config.layers)} pools reduce to 1 x 1 "
                f"(e.g. 32 x 32 for the report's table), got input {tuple(x.shape)} -> features {tuple(h.shape)}"
            )
        return self.classifier(torch.flatten(h, 1))  # (B, 512) -> (B, num_classes) logits

    def num_parameters(self) -> int:
        """Number of trainable parameters (BatchNorm running statistics are buffers and do not count)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
