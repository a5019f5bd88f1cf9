"""CFC, the coarse-to-fine cascade: a coarse network over direct labels and groups, and one fine
network per group that splits it into final labels.

For the paper's Aff-Wild2 model the coarse labels are Neutral, Happiness, Surprise, Other and
Negative, and the Negative group is refined into Anger, Disgust, Fear and Sadness. Nothing here is
specific to that grouping: any number of groups, each refined by its own network, is allowed.

Decision rules (``rule``):

* ``"hard"`` (the default of a config that names no rule): take the coarse argmax; if it is a group, the answer is that group's fine argmax.
* ``"soft"``: the argmax of the 8-way (final-label) distribution below.

The final-label distribution is ``p(k) = p_coarse(c)`` for a label ``k`` the coarse network decides
directly, and ``p(k) = p_coarse(g) * p_fine_g(k)`` for a label inside group ``g``; it sums to 1.
Fine networks run, by default (``fine_policy="when_needed"``), only on faces whose coarse argmax is
their group. Both rules then give the same label as running every network on every face (a grouped
label can only win where its group is the coarse argmax). Where a fine network did not run, its
group's probability is split evenly over the group's labels and that group's
``FacePrediction.fine_probabilities`` is ``None``; use ``fine_policy="always"`` to get every number
from a network.

Label offsets (``label_offsets``) move the operating point without retraining: each is added to its
label's logit in the network that outputs it, after the views are averaged and before anything else
(the fine policy, both rules, SP smoothing, which sums two logit terms). For a label the coarse
network decides (Neutral in the bundled model) an offset ``b`` multiplies that label's odds against
every other final label by ``exp(b)``: a prior shift of the final distribution. For a label inside a
group it shifts the odds within the group only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cfcsp_sdk.backends.base import Network
from cfcsp_sdk.config import FINE_POLICIES, RULES, CascadeSpec, FinePolicy, Rule
from cfcsp_sdk.errors import BackendError, InvalidInputError, ModelConfigError, is_real_number
from cfcsp_sdk.smoother import softmax
from cfcsp_sdk.views import Views

MAX_LABEL_OFFSET = 1000.0
"""Largest label offset (logit units): far beyond any that decides a label, and safe in float32."""


@dataclass
class CascadeOutput:
    """Cascade results for a batch of N faces (arrays, in final-label order where final)."""

    coarse_logits: np.ndarray  # [N, Kc], label offsets included
    fine_logits: dict[int, np.ndarray]  # group position -> [N, Kg], NaN rows where it did not run; offsets included
    probabilities: np.ndarray  # [N, F], rows sum to 1
    labels: np.ndarray  # [N] final-label indices


class Cascade:
    """Runs and combines the coarse and fine networks.

    Args:
        spec: the cascade section of a model config.
        networks: loaded networks by name (must include the coarse and every group's network).
        rule: ``"hard"`` or ``"soft"`` (default: the spec's).
        fine_policy: ``"when_needed"`` or ``"always"`` (default: the spec's).
        views: test-time views around every network call (default: none, one pass per face); the
            logits are the mean over the views.
        label_offsets: ``{label: offset}``, offsets in logit units (natural log of odds) added to those
            labels' logits (see the module docs); a label is a coarse label (``"Neutral"``, or a group
            such as ``"Negative"``) or a fine network's label (``"Sadness"``); offsets lie within
            +-:data:`MAX_LABEL_OFFSET`. Default: none.

    Raises:
        InvalidInputError: an unknown rule, fine policy or views; a label_offsets key the cascade has
            no label of, or an offset that is not a number within +-MAX_LABEL_OFFSET.
        ModelConfigError: a network the spec names is not in ``networks``.
    """

    def __init__(
        self,
        spec: CascadeSpec,
        networks: Mapping[str, Network],
        rule: Rule | None = None,
        fine_policy: FinePolicy | None = None,
        views: Views | None = None,
        label_offsets: Mapping[str, float] | None = None,
    ) -> None:
        rule = rule or spec.rule
        if views is not None and not isinstance(views, Views):
            raise InvalidInputError(f"views must be a cfcsp_sdk.views.Views, got {type(views).__name__}")
        self.views = views or Views()
        fine_policy = fine_policy or spec.fine_policy
        if rule not in RULES:
            raise InvalidInputError(f"rule must be one of {RULES}, got {rule!r}")
        if fine_policy not in FINE_POLICIES:
            raise InvalidInputError(f"fine_policy must be one of {FINE_POLICIES}, got {fine_policy!r}")
        needed = [spec.coarse_network] + [g.network for g in spec.groups]
        missing = [n for n in needed if n not in networks]
        if missing:
            raise ModelConfigError(f"cascade needs networks {missing}, which were not loaded", field="networks")
        self.spec = spec
        self.networks = dict(networks)
        self.rule: Rule = rule
        self.fine_policy: FinePolicy = fine_policy
        self.num_final = 1 + max(
            [v for v in spec.coarse_to_final if v is not None] + [v for g in spec.groups for v in g.to_final]
        )
        self.label_offsets: dict[str, float] = {}
        # per output slot (None: the coarse network; i: group i's network, which may be a network another
        # slot uses too), offsets of its outputs
        self._offsets: dict[int | None, np.ndarray] = {}
        self._set_offsets({} if label_offsets is None else label_offsets)

    def _set_offsets(self, label_offsets: Mapping[str, float]) -> None:
        if not isinstance(label_offsets, Mapping):
            raise InvalidInputError(
                f"label_offsets must be a mapping of label to offset, got {type(label_offsets).__name__}"
            )
        places: dict[str, list[tuple[int | None, int]]] = {}
        outputs: dict[int | None, tuple[str, ...]] = {None: self.spec.coarse_labels}
        outputs.update({i: g.labels for i, g in enumerate(self.spec.groups)})
        for slot, labels in outputs.items():
            for j, label in enumerate(labels):
                places.setdefault(label, []).append((slot, j))
        for label, offset in label_offsets.items():
            if label not in places:
                raise InvalidInputError(
                    f"label_offsets: the model has no label {label!r:.60}; its labels: {sorted(places)}"
                )
            if len(places[label]) > 1:
                raise InvalidInputError(f"label_offsets: {label!r} names outputs of several networks")
            try:
                in_range = is_real_number(offset) and abs(float(offset)) <= MAX_LABEL_OFFSET
            except OverflowError:
                in_range = False
            if not in_range:
                raise InvalidInputError(
                    f"label_offsets[{label!r}] must be a number in -{MAX_LABEL_OFFSET:g}..{MAX_LABEL_OFFSET:g}, "
                    f"got {offset!r:.40}"
                )
            slot, j = places[label][0]
            if float(offset) != 0.0:
                self._offsets.setdefault(slot, np.zeros(len(outputs[slot]), np.float32))[j] = float(offset)
                self.label_offsets[label] = float(offset)

    def __repr__(self) -> str:
        groups = ", ".join(f"{self.spec.coarse_labels[g.coarse_index]}->{g.network}" for g in self.spec.groups)
        return (
            f"Cascade(coarse={self.spec.coarse_network!r}, groups=[{groups}], rule={self.rule!r}, "
            f"fine_policy={self.fine_policy!r}, views={self.views.passes} passes"
            + (f", label_offsets={self.label_offsets}" if self.label_offsets else "")
            + ")"
        )

    # ---- running networks ----------------------------------------------------------------
    def _run(self, name: str, batch: np.ndarray, num_classes: int, slot: int | None) -> np.ndarray:
        """Network ``name`` on ``batch``; a plug-in backend's wrong shape or non-finite logits are a
        :class:`BackendError` here, not a silently wrong label later."""
        crops = self.views.expand(batch)
        out = self.networks[name](crops)
        if not isinstance(out, np.ndarray) or out.shape != (len(crops), num_classes):
            shape = out.shape if isinstance(out, np.ndarray) else type(out).__name__
            raise BackendError(
                f"network {name!r} returned {shape} for {len(crops)} crops; "
                f"expected ({len(crops)}, {num_classes}) logits"
            )
        if not np.isfinite(out).all():
            raise BackendError(f"network {name!r} returned non-finite logits (NaN or inf)")
        logits = self.views.average(out, len(batch))
        if slot in self._offsets:
            logits = logits + self._offsets[slot]
        return logits

    def run_coarse(self, batch: np.ndarray) -> np.ndarray:
        """Coarse logits ``[N, Kc]`` for a preprocessed batch (the views averaged)."""
        return self._run(self.spec.coarse_network, batch, len(self.spec.coarse_labels), None)

    def run_group(self, group: int, batch: np.ndarray) -> np.ndarray:
        """Fine logits ``[N, Kg]`` of group position ``group``'s network on every face of ``batch`` (the
        views averaged), for callers that decide themselves which faces need it."""
        g = self.spec.groups[group]
        return self._run(g.network, batch, len(g.labels), group)

    def fine_needed(self, coarse_probs: np.ndarray) -> dict[int, np.ndarray]:
        """Per group position, a boolean mask of the faces its fine network must run on."""
        n = len(coarse_probs)
        if self.fine_policy == "always":
            return {i: np.ones(n, bool) for i in range(len(self.spec.groups))}
        top = np.argmax(coarse_probs, axis=1) if n else np.zeros(0, int)
        return {i: top == g.coarse_index for i, g in enumerate(self.spec.groups)}

    def run_fine(self, batch: np.ndarray, needed: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Fine logits per group, NaN rows where the mask says the network need not run."""
        out = {}
        for i, g in enumerate(self.spec.groups):
            mask = needed[i]
            logits = np.full((len(batch), len(g.labels)), np.nan, np.float32)
            if mask.any():
                logits[mask] = self.run_group(i, np.ascontiguousarray(batch[mask]))
            out[i] = logits
        return out

    # ---- combining scores ----------------------------------------------------------------
    def combine(self, coarse_probs: np.ndarray, fine_probs: Mapping[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Final-label probabilities ``[N, F]`` and labels ``[N]`` from coarse and fine probabilities.

        Fine rows of NaN (network not run) split the group's probability evenly.
        """
        cp = np.asarray(coarse_probs, dtype=np.float64)
        n = len(cp)
        probs = np.zeros((n, self.num_final), np.float64)
        for c, k in enumerate(self.spec.coarse_to_final):
            if k is not None:
                probs[:, k] = cp[:, c]
        for i, g in enumerate(self.spec.groups):
            fp = np.asarray(fine_probs[i], dtype=np.float64)
            missing = np.isnan(fp).any(axis=1, keepdims=True)
            fp = np.where(missing, 1.0 / len(g.labels), fp)
            probs[:, list(g.to_final)] = cp[:, [g.coarse_index]] * fp
        if self.rule == "soft":
            labels = np.argmax(probs, axis=1)
        else:
            labels = np.empty(n, np.int64)
            top = np.argmax(cp, axis=1) if n else np.zeros(0, int)
            group_at = {g.coarse_index: i for i, g in enumerate(self.spec.groups)}
            for r in range(n):
                c = int(top[r])
                if c in group_at:
                    g = self.spec.groups[group_at[c]]
                    labels[r] = g.to_final[int(np.argmax(probs[r, list(g.to_final)]))]
                else:
                    labels[r] = self.spec.coarse_to_final[c]
        return probs.astype(np.float32), labels

    def __call__(self, batch: np.ndarray) -> CascadeOutput:
        """Run the cascade on a preprocessed float32 NCHW batch (no smoothing)."""
        coarse_logits = self.run_coarse(batch)
        coarse_probs = softmax(coarse_logits)
        fine_logits = self.run_fine(batch, self.fine_needed(coarse_probs))
        probs, labels = self.combine(coarse_probs, {i: softmax(v) for i, v in fine_logits.items()})
        return CascadeOutput(coarse_logits, fine_logits, probs, labels)


def parse_label_offset(text: str) -> tuple[str, float]:
    """One ``LABEL=OFFSET`` item of the command line (``"Neutral=-0.5"``) as ``(label, offset)``.

    Raises:
        InvalidInputError: no ``=``, an empty label, or an offset that is not a finite number.
    """
    label, sep, value = str(text).rpartition("=")
    label = label.strip()
    try:
        offset = float(value)
    except ValueError:
        offset = math.nan
    if not sep or not label or not math.isfinite(offset):
        raise InvalidInputError(f"a label offset is LABEL=OFFSET with a finite OFFSET (Neutral=-0.5), got {text!r:.60}")
    return label, offset
