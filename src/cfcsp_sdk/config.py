"""The model repository's ``config.json``: typed, validated, round-trippable.

A model repository is a folder (local or on the Hugging Face Hub) holding ``config.json`` and, for
every network it declares, ``<name>.safetensors`` (torch backend) and ``<name>.onnx`` (ONNX Runtime
backend). docs/model-repository.md describes every field; :func:`ModelConfig.from_dict` checks them
and raises :class:`~cfcsp_sdk.errors.ModelConfigError` naming the first bad one.
"""

from __future__ import annotations

import builtins
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from cfcsp_sdk.errors import InvalidInputError, ModelConfigError, ModelNotFoundError
from cfcsp_sdk.views import Views, parse_views

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"

Rule = Literal["hard", "soft"]
FinePolicy = Literal["when_needed", "always"]
SmoothingMode = Literal["centered", "causal"]
ColorOrder = Literal["gray", "rgb", "bgr"]
Interpolation = Literal["nearest", "linear", "cubic", "area"]

# Bounds: anything beyond them is a broken or hostile file, refused at load time instead of failing
# later with MemoryError or a backend's own error
MAX_CONFIG_BYTES = 1 << 20
MAX_INPUT_SIDE = 2048  # pixels, each side of a network input
MAX_TEMPLATE_SIDE = 4096  # pixels, each side of the face template canvas
MAX_CLASSES = 1000
MAX_LABEL_LENGTH = 100
MAX_SMOOTHING_WINDOW = 10_000
MAX_ARG_INT = 4096  # every integer among a network's builder arguments
MAX_ARG_ITEMS = 64  # entries of a list among a network's builder arguments
NETWORK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
"""Network names become file names (``<name>.onnx``): plain identifiers only, never a path."""

RULES = ("hard", "soft")
FINE_POLICIES = ("when_needed", "always")
SMOOTHING_MODES = ("centered", "causal")


@dataclass(frozen=True)
class FaceTemplate:
    """Where the five landmarks of an aligned face land, in a canvas of ``size`` = (width, height).

    Point order is the image's: left-in-image eye, right-in-image eye, nose tip, left-in-image mouth
    corner, right-in-image mouth corner (the subject's right eye comes first). The aligned crop is the
    similarity warp mapping detected landmarks onto these points, then resized to the input size.
    """

    size: tuple[int, int]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Preprocessing:
    """How an aligned face crop becomes a network input tensor (float32, NCHW)."""

    input_size: tuple[int, int]  # (height, width)
    color: ColorOrder
    interpolation: Interpolation
    mean: tuple[float, ...]
    std: tuple[float, ...]
    face_template: FaceTemplate
    scale: float = 1.0 / 255.0  # pixel values are multiplied by this before mean/std

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3


@dataclass(frozen=True)
class GroupSpec:
    """A coarse label refined by a fine network: its labels and where each lands in the final labels."""

    coarse_index: int
    network: str
    labels: tuple[str, ...]
    to_final: tuple[int, ...]


@dataclass(frozen=True)
class CascadeSpec:
    """The coarse network, its map to final labels (``None`` where a group takes over), and groups."""

    coarse_network: str
    coarse_labels: tuple[str, ...]
    coarse_to_final: tuple[int | None, ...]
    groups: tuple[GroupSpec, ...]
    rule: Rule = "hard"
    fine_policy: FinePolicy = "when_needed"


@dataclass(frozen=True)
class SmoothingDefaults:
    """Defaults of the :class:`~cfcsp_sdk.Smoother` for this model (window counts frames)."""

    window: int = 5
    mode: SmoothingMode = "centered"


@dataclass(frozen=True)
class NetworkSpec:
    """One network: its architecture id, builder arguments and number of output classes.

    ``architecture`` is ``None`` where the config names none (an ONNX-only model: the torch backend,
    which builds networks from their architecture, refuses such a network when loading it).
    """

    architecture: str | None
    num_classes: int
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    """A parsed, validated ``config.json``."""

    labels: tuple[str, ...]
    cascade: CascadeSpec
    preprocessing: Preprocessing
    networks: dict[str, NetworkSpec]
    smoothing: SmoothingDefaults = SmoothingDefaults()
    name: str = ""
    format_version: int = FORMAT_VERSION
    views: Views = Views()  # test-time views the cascade applies around each network (none by default)

    # ---- reading -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        """Validate and parse a config mapping; raises ModelConfigError naming the bad field."""
        d = _Reader(data, "config")
        version = d.int("format_version")
        if version != FORMAT_VERSION:
            raise ModelConfigError(
                f"unsupported format version {version}; this SDK reads version {FORMAT_VERSION}",
                field="format_version",
            )
        labels = d.str_list("labels", nonempty=True, unique=True)
        networks = {}
        for name, spec in d.mapping("networks", nonempty=True).items():
            if not isinstance(name, str) or not NETWORK_NAME.fullmatch(name):
                raise ModelConfigError(
                    f"network name {name!r} must be a plain identifier (letters, digits, '_' and '-', "
                    "starting with a letter, at most 64 characters): it becomes a file name",
                    field="networks",
                )
            networks[name] = _parse_network(_Reader(spec, f"networks.{name}"))
        cascade = _parse_cascade(d.sub("cascade"), labels, networks)
        pre = _parse_preprocessing(d.sub("preprocessing"))
        smoothing = SmoothingDefaults()
        if "smoothing" in d.data:
            s = d.sub("smoothing")
            smoothing = SmoothingDefaults(
                window=s.int("window", minimum=1, maximum=MAX_SMOOTHING_WINDOW), mode=s.choice("mode", SMOOTHING_MODES)
            )
        for name, net in networks.items():
            if net.args.get("in_channels", pre.channels) != pre.channels:
                raise ModelConfigError(
                    f"network takes {net.args['in_channels']} channels but preprocessing.color "
                    f"{pre.color!r} gives {pre.channels}",
                    field=f"networks.{name}.args.in_channels",
                )
        views = Views()
        if "views" in d.data:
            if not isinstance(d.data["views"], dict):
                raise d.fail("views", 'must be a JSON object like {"mirror": true, "shifts": [[1, 1]]}')
            try:
                views = parse_views(d.data["views"], Views())
            except InvalidInputError as exc:
                raise ModelConfigError(str(exc), field="views") from None
            side = min(pre.input_size)
            if any(max(abs(dx), abs(dy)) >= side for dx, dy in views.shifts):
                raise d.fail("views", f"shifts must be smaller than the input ({side} px)")
        name = d.data.get("name", "")
        if not isinstance(name, str) or len(name) > 200:
            raise d.fail("name", f"must be a string of at most 200 characters, got {name!r:.80}")
        return cls(
            labels=tuple(labels),
            cascade=cascade,
            preprocessing=pre,
            networks=networks,
            smoothing=smoothing,
            name=name,
            format_version=version,
            views=views,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> ModelConfig:
        """Read and validate a config.json file."""
        path = Path(path)
        if not path.is_file():
            raise ModelNotFoundError(f"no {CONFIG_NAME} at {path}")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ModelConfigError(
                f"{path} is {path.stat().st_size} bytes; a config.json is at most {MAX_CONFIG_BYTES}"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelConfigError(f"{path} is not valid JSON: {exc}") from exc
        except RecursionError:
            raise ModelConfigError(f"{path} nests JSON too deeply to be a config") from None
        return cls.from_dict(data)

    # ---- writing -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping that :meth:`from_dict` reads back to an equal config."""
        c = self.cascade
        p = self.preprocessing
        return {
            "format_version": self.format_version,
            "name": self.name,
            "labels": list(self.labels),
            "cascade": {
                "coarse": {
                    "network": c.coarse_network,
                    "labels": list(c.coarse_labels),
                    "to_final": list(c.coarse_to_final),
                },
                "groups": [
                    {
                        "coarse_index": g.coarse_index,
                        "network": g.network,
                        "labels": list(g.labels),
                        "to_final": list(g.to_final),
                    }
                    for g in c.groups
                ],
                "rule": c.rule,
                "fine_policy": c.fine_policy,
            },
            "preprocessing": {
                "input_size": list(p.input_size),
                "color": p.color,
                "interpolation": p.interpolation,
                "scale": p.scale,
                "mean": list(p.mean),
                "std": list(p.std),
                "face_template": {
                    "size": list(p.face_template.size),
                    "points": [list(pt) for pt in p.face_template.points],
                },
            },
            "smoothing": asdict(self.smoothing),
            **({"views": self.views.to_dict()} if self.views.passes > 1 else {}),
            "networks": {
                name: {
                    **({"architecture": n.architecture} if n.architecture is not None else {}),
                    "num_classes": n.num_classes,
                    "args": dict(n.args),
                }
                for name, n in self.networks.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` into ``folder`` (whole or not at all); returns its path."""
        from cfcsp_sdk.io.files import write_text_atomic

        return write_text_atomic(Path(folder) / CONFIG_NAME, self.to_json())


class _Reader:
    """Typed access to one JSON object with errors that name the full field path."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ModelConfigError(f"must be a JSON object, got {type(data).__name__}", field=where)
        self.data = data
        self.where = where

    def path(self, key: str) -> str:
        return key if self.where == "config" else f"{self.where}.{key}"

    def get(self, key: str) -> Any:
        if key not in self.data:
            raise ModelConfigError("missing required field", field=self.path(key))
        return self.data[key]

    def fail(self, key: str, message: str) -> ModelConfigError:
        return ModelConfigError(message, field=self.path(key))

    def sub(self, key: str) -> _Reader:
        return _Reader(self.get(key), self.path(key))

    def mapping(self, key: str, nonempty: bool = False) -> dict[str, Any]:
        v = self.get(key)
        if not isinstance(v, dict) or (nonempty and not v):
            raise self.fail(key, "must be a non-empty JSON object" if nonempty else "must be a JSON object")
        return v

    def int(self, key: str, minimum: int | None = None, maximum: int | None = None) -> int:
        v = self.get(key)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(key, f"must be an integer, got {v!r:.80}")
        if minimum is not None and v < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {v}")
        if maximum is not None and v > maximum:
            raise self.fail(key, f"must be <= {maximum}, got {v}")
        return v

    def str(self, key: builtins.str) -> builtins.str:
        v = self.get(key)
        if not isinstance(v, str) or not v:
            raise self.fail(key, f"must be a non-empty string, got {v!r}")
        return v

    def choice(self, key: builtins.str, options: tuple[builtins.str, ...]) -> Any:
        v = self.get(key)
        if v not in options:
            raise self.fail(key, f"must be one of {', '.join(map(repr, options))}, got {v!r}")
        return v

    def str_list(self, key: builtins.str, nonempty: bool = False, unique: bool = False) -> list[builtins.str]:
        v = self.get(key)
        if not isinstance(v, list) or not all(isinstance(s, str) and s and len(s) <= MAX_LABEL_LENGTH for s in v):
            raise self.fail(key, f"must be a list of non-empty strings of at most {MAX_LABEL_LENGTH} characters")
        if len(v) > MAX_CLASSES:
            raise self.fail(key, f"has {len(v)} entries; at most {MAX_CLASSES}")
        if nonempty and not v:
            raise self.fail(key, "must not be empty")
        if unique and len(set(v)) != len(v):
            raise self.fail(key, f"must not repeat a name: {v}")
        return v

    def number_list(self, key: builtins.str, length: builtins.int | None = None, positive: bool = False) -> list[float]:
        v = self.get(key)
        ok = isinstance(v, list) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v
        )
        if not ok or (length is not None and len(v) != length):
            n = f"{length} " if length is not None else ""
            raise self.fail(key, f"must be a list of {n}finite numbers, got {v!r:.80}")
        if positive and any(x <= 0 for x in v):
            raise self.fail(key, f"must hold positive numbers, got {v!r}")
        return [float(x) for x in v]


def _check_arg(r: _Reader, key: str, value: Any, depth: int = 0) -> None:
    """Builder arguments are flat: numbers, strings, booleans, null, and lists of those (nested at most
    twice), every integer in 0..MAX_ARG_INT, so no config can ask for a negative or giant layer."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not 0 <= value <= MAX_ARG_INT:
            raise r.fail(key, f"integers must lie in 0..{MAX_ARG_INT}, got {value}")
    elif isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_ARG_INT:
            raise r.fail(key, f"numbers must be finite and at most {MAX_ARG_INT} in size, got {value!r}")
    elif isinstance(value, str):
        if len(value) > 200:
            raise r.fail(key, "strings must be at most 200 characters")
    elif isinstance(value, list):
        if depth >= 2 or len(value) > MAX_ARG_ITEMS:
            raise r.fail(key, f"lists may hold at most {MAX_ARG_ITEMS} entries and nest at most twice")
        for item in value:
            _check_arg(r, key, item, depth + 1)
    else:
        raise r.fail(key, f"must be a number, string, boolean, null or list, got {type(value).__name__}")


def _parse_network(r: _Reader) -> NetworkSpec:
    args = r.data.get("args", {})
    if not isinstance(args, dict):
        raise r.fail("args", "must be a JSON object")
    for key, value in args.items():
        _check_arg(r, f"args.{key}", value)
    # only backends that build the network from code (torch) need an architecture, and they check the
    # id when they build it: an ONNX file is the whole network, so an ONNX-only folder may name none
    # (or one whose builder is not installed here)
    architecture = None
    if "architecture" in r.data:
        architecture = r.str("architecture")
        if len(architecture) > 200:
            raise r.fail("architecture", "must be at most 200 characters")
    num_classes = r.int("num_classes", minimum=2, maximum=MAX_CLASSES)
    return NetworkSpec(architecture=architecture, num_classes=num_classes, args=args)


def _final_index(r: _Reader, key: str, value: Any, n_final: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n_final:
        raise r.fail(key, f"entries must be final-label indices in 0..{n_final - 1}, got {value!r}")
    return value


def _parse_cascade(r: _Reader, labels: list[str], networks: dict[str, NetworkSpec]) -> CascadeSpec:
    n_final = len(labels)
    coarse = r.sub("coarse")
    coarse_net = coarse.str("network")
    if coarse_net not in networks:
        raise coarse.fail("network", f"names no entry of networks ({', '.join(networks)}): {coarse_net!r}")
    coarse_labels = coarse.str_list("labels", nonempty=True, unique=True)
    if networks[coarse_net].num_classes != len(coarse_labels):
        raise coarse.fail(
            "labels",
            f"has {len(coarse_labels)} labels but network {coarse_net!r} has {networks[coarse_net].num_classes} classes",
        )
    raw_map = coarse.get("to_final")
    if not isinstance(raw_map, list) or len(raw_map) != len(coarse_labels):
        raise coarse.fail("to_final", f"must be a list of {len(coarse_labels)} entries (index or null)")
    coarse_to_final = tuple(None if v is None else _final_index(coarse, "to_final", v, n_final) for v in raw_map)

    groups_raw = r.get("groups")
    if not isinstance(groups_raw, list):
        raise r.fail("groups", "must be a list")
    groups = []
    for i, g_raw in enumerate(groups_raw):
        g = _Reader(g_raw, r.path(f"groups[{i}]"))
        ci = g.int("coarse_index", minimum=0)
        if ci >= len(coarse_labels) or coarse_to_final[ci] is not None:
            raise g.fail("coarse_index", f"must point at a coarse label whose to_final is null, got {ci}")
        net = g.str("network")
        if net not in networks:
            raise g.fail("network", f"names no entry of networks ({', '.join(networks)}): {net!r}")
        g_labels = g.str_list("labels", nonempty=True, unique=True)
        if networks[net].num_classes != len(g_labels):
            raise g.fail(
                "labels", f"has {len(g_labels)} labels but network {net!r} has {networks[net].num_classes} classes"
            )
        to_final_raw = g.get("to_final")
        if not isinstance(to_final_raw, list) or len(to_final_raw) != len(g_labels):
            raise g.fail("to_final", f"must be a list of {len(g_labels)} final-label indices")
        to_final = tuple(_final_index(g, "to_final", v, n_final) for v in to_final_raw)
        groups.append(GroupSpec(coarse_index=ci, network=net, labels=tuple(g_labels), to_final=to_final))

    grouped = [g.coarse_index for g in groups]
    if len(set(grouped)) != len(grouped):
        raise r.fail("groups", "two groups refine the same coarse label")
    missing = [coarse_labels[i] for i, v in enumerate(coarse_to_final) if v is None and i not in grouped]
    if missing:
        raise coarse.fail("to_final", f"null entries need a group refining them: {missing}")
    reached = [v for v in coarse_to_final if v is not None] + [v for g in groups for v in g.to_final]
    if sorted(reached) != list(range(n_final)):
        dupes = sorted({labels[v] for v in reached if reached.count(v) > 1})
        lost = [labels[i] for i in range(n_final) if i not in reached]
        raise r.fail(
            "coarse.to_final", f"every final label must be reached exactly once (repeated: {dupes}, unreached: {lost})"
        )
    rule: Rule = r.choice("rule", RULES) if "rule" in r.data else "hard"
    policy: FinePolicy = r.choice("fine_policy", FINE_POLICIES) if "fine_policy" in r.data else "when_needed"
    return CascadeSpec(
        coarse_network=coarse_net,
        coarse_labels=tuple(coarse_labels),
        coarse_to_final=coarse_to_final,
        groups=tuple(groups),
        rule=rule,
        fine_policy=policy,
    )


def _parse_preprocessing(r: _Reader) -> Preprocessing:
    size = r.get("input_size")
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_INPUT_SIDE for v in size)
    ):
        raise r.fail("input_size", f"must be [height, width] in integers 1..{MAX_INPUT_SIDE}, got {size!r:.80}")
    color = r.choice("color", ("gray", "rgb", "bgr"))
    channels = 1 if color == "gray" else 3
    t = r.sub("face_template")
    tsize = t.get("size")
    if not (
        isinstance(tsize, list)
        and len(tsize) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_TEMPLATE_SIDE for v in tsize)
    ):
        raise t.fail("size", f"must be [width, height] in integers 1..{MAX_TEMPLATE_SIDE}, got {tsize!r:.80}")
    pts = t.get("points")
    if not (isinstance(pts, list) and len(pts) == 5):
        raise t.fail("points", "must be a list of five [x, y] points")
    points = []
    for i, p in enumerate(pts):
        if not (
            isinstance(p, list)
            and len(p) == 2
            and all(
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and math.isfinite(v)
                and abs(v) <= 2 * MAX_TEMPLATE_SIDE
                for v in p
            )
        ):
            raise t.fail(f"points[{i}]", f"must be [x, y] in finite numbers, got {p!r:.80}")
        points.append((float(p[0]), float(p[1])))
    return Preprocessing(
        input_size=(size[0], size[1]),
        color=color,
        interpolation=r.choice("interpolation", ("nearest", "linear", "cubic", "area")),
        mean=tuple(r.number_list("mean", length=channels)),
        std=tuple(r.number_list("std", length=channels, positive=True)),
        face_template=FaceTemplate(size=(tsize[0], tsize[1]), points=tuple(points)),
        scale=_scale(r),
    )


def _scale(r: _Reader) -> float:
    if "scale" not in r.data:
        return 1.0 / 255.0
    v = r.data["scale"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= 1000:
        raise r.fail("scale", f"must be a number in (0, 1000], got {v!r:.80}")
    return float(v)
