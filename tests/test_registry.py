"""The one registry type behind backends, architectures and detectors (cfcsp_sdk/registry.py)."""

import subprocess
import sys
import textwrap
import warnings

import pytest

from cfcsp_sdk.errors import CfcspError, InvalidInputError
from cfcsp_sdk.registry import Registry, RegistryOverwriteWarning


def _distribution(site, group, line, name="plugin"):
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{line}\n")


def test_builtins_by_path_registrations_and_entry_points_in_that_order(tmp_path, monkeypatch):
    (tmp_path / "plugin_mod.py").write_text(
        "def from_plugin():\n    return 'plugin'\n\ndef other():\n    return 'other'\n"
    )
    _distribution(tmp_path, "test.registry.group", "ep-only = plugin_mod:from_plugin\njson-dumps = plugin_mod:other")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("widget", "test.registry.group", {"json-dumps": "json:dumps"}, error=InvalidInputError)
    assert reg.names() == ["ep-only", "json-dumps"]
    import json

    assert reg.get("json-dumps") is json.dumps  # the built-in wins over an entry point of its name
    assert reg.get("ep-only")() == "plugin"
    with pytest.raises(InvalidInputError, match=r"unknown widget 'nope'; available: ep-only, json-dumps"):
        reg.get("nope")
    assert "ep-only" in reg and "nope" not in reg and 3 not in reg


def test_overwriting_any_known_name_warns_and_takes_effect(tmp_path, monkeypatch):
    (tmp_path / "plugin_mod2.py").write_text("def thing():\n    return 1\n")
    _distribution(tmp_path, "test.registry.group2", "from-ep = plugin_mod2:thing", name="plugin2")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("widget", "test.registry.group2", {"builtin": "json:dumps"})

    def mine():
        return "mine"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.register("fresh", mine)  # a new name: no warning
    for name, source in (
        ("fresh", "registered as"),
        ("builtin", "built in as json:dumps"),
        ("from-ep", "entry point plugin_mod2:thing"),
    ):
        with pytest.warns(RegistryOverwriteWarning, match=f"widget '{name}' \\({source}"):
            reg.register(name, mine)
        assert reg.get(name) is mine
    reg.unregister("builtin")
    import json

    assert reg.get("builtin") is json.dumps


def test_register_as_a_decorator_and_bad_names():
    reg = Registry("widget", None, {})

    @reg.register("decorated")
    def build():
        return 2

    assert reg.get("decorated") is build and reg.names() == ["decorated"]
    with pytest.raises(CfcspError, match="non-empty string"):
        reg.register("", build)


def test_a_broken_entry_point_is_the_registrys_error(tmp_path, monkeypatch):
    _distribution(tmp_path, "test.registry.group3", "broken = no_such_module_abc:thing", name="broken3")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("widget", "test.registry.group3", {}, error=InvalidInputError)
    with pytest.raises(
        InvalidInputError,
        match="widget 'broken' from entry point 'no_such_module_abc:thing' failed to load: ModuleNotFoundError",
    ):
        reg.get("broken")


def test_listing_and_checking_names_never_imports_torch():
    code = textwrap.dedent("""
        import sys
        from cfcsp_sdk.backends import available_backends
        from cfcsp_sdk.models import list_architectures
        from cfcsp_sdk.faces.detection import available_detectors, check_detector
        from cfcsp_sdk.config import ModelConfig
        assert "torch" in available_backends() and "cfcsp-resnet" in list_architectures()
        assert available_detectors() == ["aligned", "mtcnn", "yunet"], available_detectors()
        check_detector("aligned")
        assert "torch" not in sys.modules, "torch imported"
        assert "cfcsp_sdk.faces.yunet" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
