"""A compact VGG-style CNN for small grey face crops (the SDK's default FER+ networks).

Four stages of 3x3 conv + BatchNorm + ReLU with 2x2 max pooling between them, global average
pooling, dropout and a linear head. With the default widths it has about 0.53 M parameters and
runs at several hundred faces/s on two CPU cores.

With ``flip_average=True`` the network also scores the mirror image of each crop and returns the mean
of both logits. That is test-time augmentation inside the network itself, so the exported ONNX graph and
the torch module give the same averaged output and callers need not know about it; it costs a second
pass over the crop. It does not change the parameters, so weights trained without it load unchanged.

``shift_views`` adds more views of the same kind: each ``(dx, dy)`` scores the crop moved by that many
pixels (border pixels repeated into the gap; with ``flip_average`` its mirror too), and the logits of
the original and every shifted view are averaged. Each view costs as much as the original crop.

``CompactCNNEnsemble`` (architecture ``cfcsp-compact-cnn-ensemble``) holds ``members`` such networks of
one shape, trained apart (other seeds, other augmentations), and returns the mean of their logits: one
module, one ONNX graph, each member costing one pass per view.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cfcsp_sdk.errors import ModelConfigError

MAX_MEMBERS = 16


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CompactCNN(nn.Module):
    """Conv net: ``in_channels`` x H x W -> ``num_classes`` logits (H, W divisible by 8)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        widths: Sequence[int] = (24, 48, 96, 160),
        dropout: float = 0.3,
        flip_average: bool = False,
        shift_views: Sequence[Sequence[int]] = (),
    ) -> None:
        super().__init__()
        self.flip_average = bool(flip_average)
        self.shift_views = tuple((int(dx), int(dy)) for dx, dy in shift_views)
        layers: list[nn.Module] = []
        cin = in_channels
        for i, width in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            layers += [_conv_bn_relu(cin, width), _conv_bn_relu(width, width)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled features (batch x last width), before dropout and the head."""
        return self.features(x).mean(dim=(2, 3))

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.forward_features(x)))

    def _view_logits(self, x: torch.Tensor) -> torch.Tensor:
        logits = self._logits(x)
        if self.flip_average:
            logits = (logits + self._logits(torch.flip(x, dims=[3]))) / 2
        return logits

    def _shifted(self, x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
        """``x`` moved right by ``dx`` and down by ``dy`` pixels, same size, borders repeated."""
        p = max(abs(dx), abs(dy))
        padded = nn.functional.pad(x, (p, p, p, p), mode="replicate")
        # static slice ends (negative or None) keep the exported graph free of shape arithmetic
        return padded[:, :, p - dy : (-(p + dy) or None), p - dx : (-(p + dx) or None)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self._view_logits(x)
        for dx, dy in self.shift_views:
            logits = logits + self._view_logits(self._shifted(x, dx, dy))
        return logits / (1 + len(self.shift_views))


def build_compact_cnn(
    num_classes: int,
    in_channels: int = 1,
    widths: Sequence[int] = (24, 48, 96, 160),
    dropout: float = 0.3,
    flip_average: bool = False,
    shift_views: Sequence[Sequence[int]] = (),
) -> CompactCNN:
    return CompactCNN(
        num_classes=num_classes,
        in_channels=in_channels,
        widths=tuple(widths),
        dropout=dropout,
        flip_average=flip_average,
        shift_views=shift_views,
    )


class CompactCNNEnsemble(nn.Module):
    """``members`` CompactCNNs of one shape: ``in_channels`` x H x W -> the mean of their
    ``num_classes`` logits. Weights are named ``members.<i>.<CompactCNN's names>``."""

    def __init__(
        self,
        num_classes: int,
        members: int = 2,
        in_channels: int = 1,
        widths: Sequence[int] = (24, 48, 96, 160),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= MAX_MEMBERS:
            raise ModelConfigError(
                f"members must be an integer in 1..{MAX_MEMBERS}, got {members!r:.40}", field="args.members"
            )
        self.members = nn.ModuleList(CompactCNN(num_classes, in_channels, widths, dropout) for _ in range(members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.members[0](x)
        for member in self.members[1:]:
            logits = logits + member(x)
        return logits / len(self.members)


def build_compact_cnn_ensemble(
    num_classes: int,
    members: int = 2,
    in_channels: int = 1,
    widths: Sequence[int] = (24, 48, 96, 160),
    dropout: float = 0.3,
) -> CompactCNNEnsemble:
    return CompactCNNEnsemble(num_classes, members, in_channels, tuple(widths), dropout)
