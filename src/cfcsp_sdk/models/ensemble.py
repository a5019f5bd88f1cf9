"""A weighted ensemble of networks of different architectures (architecture ``cfcsp-ensemble``).

Config arguments stay flat (numbers, strings and lists: config.py refuses objects), so the members are
described by lists:

* ``members``: the architecture id of each member (no ensembles inside ensembles), e.g.
  ``["cfcsp-resnet", "cfcsp-compact-cnn"]``;
* ``weights``: one positive weight per member (default: equal); they are normalised to sum to 1, so
  the output is a weighted mean of the members' logits and a calibration ``logits / T + b`` baked into
  every member's head is the same calibration of the mean;
* ``per_member``: the names of the arguments given as one entry per member (``null``: that member's
  builder default), e.g. ``"widths": [[24, 48, 96, 192], [24, 48, 96, 160]]``;
* any other argument goes to every member (``in_channels``, ``dropout``).

Input and output are the members': ``in_channels`` x H x W -> ``num_classes`` logits. Weights are named
``members.<i>.<the member's names>``, as in ``cfcsp-compact-cnn-ensemble``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cfcsp_sdk.errors import ModelConfigError

MAX_MEMBERS = 8


class WeightedEnsemble(nn.Module):
    """The weighted mean of its members' logits (``weights`` sum to 1)."""

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.weights = tuple(float(w) for w in weights)  # constants in the exported graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.weights[0] * self.members[0](x)
        for w, member in zip(self.weights[1:], self.members[1:]):
            logits = logits + w * member(x)
        return logits


def _fail(message: str, field: str) -> ModelConfigError:
    return ModelConfigError(message, field=f"args.{field}")


def build_ensemble(
    num_classes: int,
    members: Sequence[str],
    weights: Sequence[float] | None = None,
    per_member: Sequence[str] | None = None,
    **shared: Any,
) -> WeightedEnsemble:
    from cfcsp_sdk.models.registry import build_network

    if (
        not isinstance(members, list)
        or not 1 <= len(members) <= MAX_MEMBERS
        or not all(isinstance(m, str) for m in members)
    ):
        raise _fail(f"must be a list of 1..{MAX_MEMBERS} architecture ids, got {members!r:.80}", "members")
    if any(m in ("cfcsp-ensemble", "cfcsp-compact-cnn-ensemble") for m in members):
        raise _fail("an ensemble's members cannot be ensembles", "members")
    n = len(members)
    if weights is None:
        weights = [1.0] * n
    if (
        not isinstance(weights, list)
        or len(weights) != n
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)
        or not all(math.isfinite(w) and w > 0 for w in weights)
    ):
        raise _fail(f"must be {n} positive numbers, one per member, got {weights!r:.80}", "weights")
    if per_member is None:
        per_member = []
    if not isinstance(per_member, list) or not all(isinstance(k, str) for k in per_member):
        raise _fail(f"must be a list of argument names, got {per_member!r:.80}", "per_member")
    for key in per_member:
        if key not in shared or not isinstance(shared[key], list) or len(shared[key]) != n:
            raise _fail(f"is per member, so it must be a list of {n} entries (null: the default)", key)
    modules = []
    for i, architecture in enumerate(members):
        args = {k: v for k, v in shared.items() if k not in per_member}
        args.update({k: shared[k][i] for k in per_member if shared[k][i] is not None})
        try:
            modules.append(build_network(architecture, num_classes, args))
        except ModelConfigError as exc:
            raise _fail(f"member {i} ({architecture}): {exc}", "members") from exc
    total = float(sum(weights))
    return WeightedEnsemble(modules, [w / total for w in weights])
