import copy
import json

import pytest

from cfcsp_sdk import ModelConfig, ModelConfigError, ModelNotFoundError
from conftest import affwild_config_dict


def test_round_trip_is_lossless():
    d = affwild_config_dict()
    cfg = ModelConfig.from_dict(d)
    assert ModelConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert cfg.cascade.coarse_to_final == (0, 4, 6, 7, None)
    assert cfg.cascade.groups[0].to_final == (1, 2, 3, 5)
    assert cfg.preprocessing.channels == 3


def _broken(path, value):
    d = affwild_config_dict()
    node = d
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if value is KeyError:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return d


@pytest.mark.parametrize(
    "path,value,field",
    [
        ("format_version", 99, "format_version"),
        ("labels", KeyError, "labels"),
        ("labels", ["A", "A"], "labels"),
        ("cascade.coarse.network", "nope", "cascade.coarse.network"),
        ("cascade.coarse.labels", ["a", "b"], "cascade.coarse.labels"),
        ("cascade.coarse.to_final", [0, 4, 6, 4, None], "cascade.coarse.to_final"),
        ("cascade.coarse.to_final", [0, 4, 6, 7, 1], "cascade.groups[0].coarse_index"),
        ("preprocessing.face_template.points", [[1, 2]] * 4 + [[1, "x"]], "preprocessing.face_template.points[4]"),
        ("cascade.coarse.to_final", [0, 4, 6, 9, None], "cascade.coarse.to_final"),
        ("cascade.groups.0.to_final", [1, 2, 3], "cascade.groups[0].to_final"),
        ("cascade.groups.0.coarse_index", 0, "cascade.groups[0].coarse_index"),
        ("cascade.rule", "vote", "cascade.rule"),
        ("preprocessing.input_size", [224], "preprocessing.input_size"),
        ("preprocessing.color", "cmyk", "preprocessing.color"),
        ("preprocessing.mean", [0.5], "preprocessing.mean"),
        ("preprocessing.std", [1, 0, 1], "preprocessing.std"),
        ("preprocessing.face_template.points", [[1, 2]], "preprocessing.face_template.points"),
        ("smoothing.window", 0, "smoothing.window"),
        ("networks.coarse.num_classes", 6, "cascade.coarse.labels"),
        ("networks.negative.architecture", "", "networks.negative.architecture"),
        ("networks.coarse.args", {"in_channels": 1}, "networks.coarse.args.in_channels"),
    ],
)
def test_errors_name_the_field(path, value, field):
    with pytest.raises(ModelConfigError) as err:
        ModelConfig.from_dict(_broken(path, value))
    assert err.value.field == field
    assert field in str(err.value)


def test_not_an_object_and_bad_files(tmp_path):
    with pytest.raises(ModelConfigError):
        ModelConfig.from_dict([1, 2])
    with pytest.raises(ModelNotFoundError):
        ModelConfig.from_file(tmp_path / "config.json")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelConfigError, match="not valid JSON"):
        ModelConfig.from_file(tmp_path / "config.json")


def test_defaults_for_optional_sections():
    d = copy.deepcopy(affwild_config_dict())
    del d["smoothing"], d["cascade"]["rule"], d["cascade"]["fine_policy"]
    cfg = ModelConfig.from_dict(d)
    assert (cfg.smoothing.window, cfg.smoothing.mode) == (5, "centered")
    assert (cfg.cascade.rule, cfg.cascade.fine_policy) == ("hard", "when_needed")


# ---- hardening (issue 14): every bad value is a ModelConfigError at load time naming the field ------------
@pytest.mark.parametrize(
    "name", ["../../evilnet", "/etc/evilnet", "a/b", "..", "a\\b", "C:evil", "", "9net", "x" * 65, "net.onnx"]
)
def test_network_names_must_be_plain_identifiers(name):
    d = affwild_config_dict()
    d["networks"][name] = d["networks"].pop("negative")
    d["cascade"]["groups"][0]["network"] = name
    with pytest.raises(ModelConfigError, match="plain identifier") as err:
        ModelConfig.from_dict(d)
    assert err.value.field == "networks"


@pytest.mark.parametrize(
    "path,value,field",
    [
        ("preprocessing.scale", "abc", "preprocessing.scale"),
        ("preprocessing.scale", [1, 2], "preprocessing.scale"),
        ("preprocessing.scale", 0, "preprocessing.scale"),
        ("preprocessing.scale", float("nan"), "preprocessing.scale"),
        ("preprocessing.scale", True, "preprocessing.scale"),
        ("preprocessing.input_size", [100000, 100000], "preprocessing.input_size"),
        ("preprocessing.face_template.size", [10**9, 10**9], "preprocessing.face_template.size"),
        ("preprocessing.face_template.points", [[1e300, 2]] * 5, "preprocessing.face_template.points[0]"),
        ("networks.coarse.architecture", 7, "networks.coarse.architecture"),
        ("networks.coarse.architecture", "x" * 201, "networks.coarse.architecture"),
        ("networks.coarse.num_classes", 10**9, "networks.coarse.num_classes"),
        ("networks.coarse.args", {"widths": [-4, 8, 8, 8]}, "networks.coarse.args.widths"),
        ("networks.coarse.args", {"widths": [4, 8, 8, 10**7]}, "networks.coarse.args.widths"),
        ("networks.coarse.args", {"widths": [[[[4]]]]}, "networks.coarse.args.widths"),
        ("networks.coarse.args", {"widths": list(range(1, 1000))}, "networks.coarse.args.widths"),
        ("networks.coarse.args", {"dropout": float("inf")}, "networks.coarse.args.dropout"),
        ("networks.coarse.args", {"x": {"nested": 1}}, "networks.coarse.args.x"),
        ("smoothing.window", 10**9, "smoothing.window"),
        ("labels", ["L" * 1000] + ["B"] * 0, "labels"),
        ("name", ["not", "a", "string"], "name"),
    ],
)
def test_bad_values_are_refused_with_the_field(path, value, field):
    with pytest.raises(ModelConfigError) as err:
        ModelConfig.from_dict(_broken(path, value))
    assert err.value.field == field


def test_deeply_nested_or_huge_config_files(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelConfigError, match="nests JSON too deeply"):
        ModelConfig.from_file(path)
    path.write_text(json.dumps({"format_version": 1, "pad": "x" * (2 << 20)}))
    with pytest.raises(ModelConfigError, match="at most"):
        ModelConfig.from_file(path)


def test_save_writes_whole_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    import os

    cfg = ModelConfig.from_dict(affwild_config_dict())
    path = cfg.save(tmp_path)
    before = path.read_bytes()
    assert ModelConfig.from_file(path) == cfg

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        ModelConfig.from_dict({**affwild_config_dict(), "name": "changed"}).save(tmp_path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_architecture_is_optional_and_not_looked_up_when_parsing():
    """Only the torch backend builds networks from an architecture id; an ONNX-only model may name none,
    or one whose builder is not installed (issue 22, item 3: config.py refused both, whatever the backend)."""
    d = affwild_config_dict()
    del d["networks"]["coarse"]["architecture"]
    d["networks"]["negative"]["architecture"] = "someone-elses-net"
    cfg = ModelConfig.from_dict(d)
    assert cfg.networks["coarse"].architecture is None
    assert cfg.networks["negative"].architecture == "someone-elses-net"
    out = cfg.to_dict()
    assert "architecture" not in out["networks"]["coarse"]
    assert ModelConfig.from_dict(out) == cfg
