"""Merge model repositories of one cascade into one whose networks are weighted ensembles (cfcsp-ensemble).

    python training/merge_models.py --model A --weight 0.5 --model B --weight 0.5 --out MERGED \
        [--calibration calibration.json] [--weights-dtype float16]

Every model must have the same labels, cascade, preprocessing (face template included) and views; each of
its networks becomes one member (a cfcsp-compact-cnn-ensemble or a cfcsp-ensemble contributes its own members,
their weights scaled by the model's). The merged network returns the weighted mean of the members' logits,
so each model's own calibration (baked into its heads) carries over; ``--calibration`` (from
``calibrate.py --model MERGED``) bakes a calibration of the mean on top, into every member's head (exact:
the weights sum to 1). Writes config.json, safetensors and ONNX, and a model card naming the members.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfcsp_sdk import ModelConfig  # noqa: E402
from cfcsp_sdk.config import NetworkSpec  # noqa: E402
from cfcsp_sdk.export import write_model_repository  # noqa: E402
from cfcsp_sdk.models import build_network  # noqa: E402
from package_model import apply_calibration, calibration_text  # noqa: E402

ENSEMBLES = ("cfcsp-compact-cnn-ensemble", "cfcsp-ensemble")


def members_of(spec: NetworkSpec, state: dict[str, torch.Tensor], weight: float) -> list[tuple]:
    """``(architecture, args, weight, state dict)`` of each member of one network."""
    if spec.architecture == "cfcsp-compact-cnn-ensemble":
        args = {k: v for k, v in spec.args.items() if k != "members"}
        n = int(spec.args["members"])
        return [
            (
                "cfcsp-compact-cnn",
                args,
                weight / n,
                {k[len(f"members.{i}.") :]: v for k, v in state.items() if k.startswith(f"members.{i}.")},
            )
            for i in range(n)
        ]
    if spec.architecture == "cfcsp-ensemble":
        module = build_network(spec.architecture, spec.num_classes, spec.args)
        out = []
        for i, (arch, w) in enumerate(zip(spec.args["members"], module.weights)):
            args = {k: v for k, v in spec.args.items() if k not in ("members", "weights", "per_member")}
            for key in spec.args.get("per_member", []):
                args.pop(key, None)
                if spec.args[key][i] is not None:
                    args[key] = spec.args[key][i]
            sub = {k[len(f"members.{i}.") :]: v for k, v in state.items() if k.startswith(f"members.{i}.")}
            out.append((arch, args, weight * w, sub))
        return out
    return [(spec.architecture, dict(spec.args), weight, dict(state))]


def ensemble_args(members: list[tuple]) -> dict:
    """Arguments every member gives alike are shared (config.py checks a shared ``in_channels`` against the
    preprocessing); the rest are per member."""
    keys = sorted({k for _, args, _, _ in members for k in args})
    shared = {k: members[0][1][k] for k in keys if all(k in a and a[k] == members[0][1][k] for _, a, _, _ in members)}
    per = [k for k in keys if k not in shared]
    return {
        "members": [arch for arch, _, _, _ in members],
        "weights": [round(w, 6) for _, _, w, _ in members],
        "per_member": per,
        **shared,
        **{k: [args.get(k) for _, args, _, _ in members] for k in per},
    }


def same_model_shape(configs: list[ModelConfig]) -> None:
    first = configs[0].to_dict()
    for cfg in configs[1:]:
        d = cfg.to_dict()
        for key in ("labels", "cascade", "preprocessing", "views"):
            if d.get(key) != first.get(key):
                raise SystemExit(f"the models differ in {key}: they cannot be merged")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="a model folder (give two or more)")
    p.add_argument("--weight", action="append", type=float, help="its weight (default: equal)")
    p.add_argument("--out", required=True)
    p.add_argument("--calibration", default=None, help="calibration.json of the merged model, baked in")
    p.add_argument("--weights-dtype", default="float16", choices=["float16", "float32"])
    p.add_argument("--name", default=None, help="config name (default: the models' names joined by '+')")
    args = p.parse_args()
    folders = [Path(m) for m in args.model]
    weights = args.weight or [1.0] * len(folders)
    if len(folders) < 2 or len(weights) != len(folders) or min(weights) <= 0:
        raise SystemExit("give two or more --model, and one positive --weight for each (or none)")
    weights = [w / sum(weights) for w in weights]
    configs = [ModelConfig.from_file(f / "config.json") for f in folders]
    same_model_shape(configs)
    cal = json.loads(Path(args.calibration).read_text()) if args.calibration else None

    merged = configs[0].to_dict()
    merged["name"] = args.name or "+".join(c.name for c in configs)
    modules, lines = {}, []
    for name, spec in configs[0].networks.items():
        members = []
        for folder, cfg, w in zip(folders, configs, weights):
            state = {
                k: v.float() if v.is_floating_point() else v
                for k, v in load_file(str(folder / f"{name}.safetensors")).items()
            }
            members += members_of(cfg.networks[name], state, w)
        net_args = ensemble_args(members)
        merged["networks"][name] = {"architecture": "cfcsp-ensemble", "num_classes": spec.num_classes, "args": net_args}
        module = build_network("cfcsp-ensemble", spec.num_classes, net_args)
        for member, (_, _, _, state) in zip(module.members, members):
            member.load_state_dict(state, strict=True)
        if cal:
            apply_calibration(module, cal[name]["temperature"], cal[name]["offsets"])
        modules[name] = module.eval()
        lines.append(f"- `{name}`: " + ", ".join(f"{arch} (weight {w:.3f})" for arch, _, w, _ in members))
    config = ModelConfig.from_dict(merged)
    card = "\n".join(
        [
            f"# {config.name}",
            "",
            "A merge of these model repositories (`training/merge_models.py`); each network is the weighted mean "
            "of its members' logits (architecture `cfcsp-ensemble`):",
            "",
            *[f"- `{f}` (weight {w:.3f}): {c.name}" for f, c, w in zip(folders, configs, weights)],
            "",
            "Members:",
            "",
            *lines,
            "",
            calibration_text(cal) if cal else "Each member keeps the calibration of the model it came from.",
            "",
        ]
    )
    write_model_repository(args.out, config, modules, card=card, weights_dtype=args.weights_dtype)
    print(f"wrote {args.out}: " + "; ".join(lines))


if __name__ == "__main__":
    main()
