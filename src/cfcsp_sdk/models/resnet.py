"""A residual CNN for small grey face crops (architecture ``cfcsp-resnet``).

Pre-activation basic blocks (He et al. 2016, "Identity Mappings in Deep Residual Networks", arXiv
1603.05027): BatchNorm + ReLU + 3x3 conv twice, with an identity (or 1x1 strided projection) shortcut.
A 3x3 stem keeps the full input resolution (no 7x7/stride-2 stem or max pooling: a 48 x 48 face has no
pixels to spare), then four stages, each halving the resolution after the first, global average pooling,
dropout and a linear head.

Input ``in_channels`` x H x W (float32, H and W divisible by 8), output ``num_classes`` logits.
With widths (32, 64, 128, 256) and one block per stage it has about 1.2 M parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cfcsp_sdk.errors import ModelConfigError


class PreActBlock(nn.Module):
    """``cin`` x H x W -> ``cout`` x H/stride x W/stride."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


class FaceResNet(nn.Module):
    """Residual net: ``in_channels`` x H x W -> ``num_classes`` logits."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks: Sequence[int] = (1, 1, 1, 1),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        widths, blocks = tuple(int(w) for w in widths), tuple(int(b) for b in blocks)
        if len(widths) != len(blocks) or not widths or min(widths) < 1 or min(blocks) < 1:
            raise ModelConfigError(
                f"widths and blocks must be positive and of one length, got {widths!r:.60} and {blocks!r:.60}",
                field="args.widths",
            )
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        layers: list[nn.Module] = []
        cin = widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks)):
            for j in range(count):
                layers.append(PreActBlock(cin, width, 2 if (i > 0 and j == 0) else 1))
                cin = width
        self.features = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled features (batch x last width), before dropout and the head."""
        x = self.features(self.stem(x))
        return torch.relu(self.bn(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.forward_features(x)))


def build_face_resnet(
    num_classes: int,
    in_channels: int = 1,
    widths: Sequence[int] = (32, 64, 128, 256),
    blocks: Sequence[int] = (1, 1, 1, 1),
    dropout: float = 0.3,
) -> FaceResNet:
    return FaceResNet(num_classes, in_channels, widths, blocks, dropout)
