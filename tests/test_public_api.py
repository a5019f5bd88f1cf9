"""The package's public names: ``__all__``, the lazy-import table and the ``TYPE_CHECKING`` block in
cfcsp_sdk/__init__.py say the same thing, every name resolves, and the version has one source (issue 22,
items 2 and 5)."""

import ast
import importlib
import importlib.metadata
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest

import cfcsp_sdk

ROOT = Path(__file__).resolve().parents[1]
INIT = ROOT / "src" / "cfcsp_sdk" / "__init__.py"


def _module_parts():
    """(eager imports {name: module}, TYPE_CHECKING imports {name: module}, _LAZY, __all__) read from the source."""
    tree = ast.parse(INIT.read_text())
    eager, typing_only, lazy, public = {}, {}, None, None
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module.startswith("cfcsp_sdk"):
            eager.update({a.asname or a.name: node.module for a in node.names})
        elif isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for sub in node.body:
                assert isinstance(sub, ast.ImportFrom), ast.unparse(sub)
                typing_only.update({a.asname or a.name: sub.module for a in sub.names})
        elif isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["_LAZY"]:
            lazy = ast.literal_eval(node.value)
        elif isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]:
            public = ast.literal_eval(node.value)
    assert lazy is not None and public is not None
    return eager, typing_only, lazy, public


def test_all_lazy_table_and_type_checking_block_agree():
    eager, typing_only, lazy, public = _module_parts()
    assert typing_only == lazy  # same names, same modules: type checkers see what __getattr__ returns
    assert not set(eager) & set(lazy)
    assert sorted(public) == sorted(set(eager) | set(lazy) | {"__version__"})
    assert len(public) == len(set(public))
    assert public == sorted(public, key=lambda n: (n.startswith("_") or n.islower(), n))  # kept in order
    assert cfcsp_sdk.__all__ == public


@pytest.mark.parametrize("name", cfcsp_sdk.__all__)
def test_every_public_name_resolves_to_its_module(name):
    value = getattr(cfcsp_sdk, name)
    _, _, lazy, _ = _module_parts()
    if name in lazy:
        assert value is getattr(importlib.import_module(lazy[name]), name)
    assert name in dir(cfcsp_sdk)


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        cfcsp_sdk.no_such_name  # noqa: B018


def test_result_types_softmax_and_media_warning_are_public():
    from cfcsp_sdk import DetectedFace, FaceRow, ImageResult, MediaWarning, VideoResult, softmax
    from cfcsp_sdk.errors import MediaWarning as FromErrors
    from cfcsp_sdk.results import DetectedFace as D
    from cfcsp_sdk.results import FaceRow as R
    from cfcsp_sdk.results import ImageResult as I
    from cfcsp_sdk.results import VideoResult as V
    from cfcsp_sdk.smoother import softmax as from_smoother

    assert (DetectedFace, FaceRow, ImageResult, VideoResult) == (D, R, I, V)
    assert MediaWarning is FromErrors and issubclass(MediaWarning, UserWarning)
    assert softmax is from_smoother
    assert softmax([[0.0, 0.0]]).tolist() == [[0.5, 0.5]]


def test_importing_the_package_stays_light():
    """The lazy table exists so that ``cfcsp`` starts fast: importing the package pulls in no numpy."""
    code = "import sys, cfcsp_sdk; print(sorted(m for m in ('numpy', 'cv2', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_the_version_has_one_source():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cfcsp_sdk.__version__"}
    from setuptools.config.expand import read_attr

    assert read_attr("cfcsp_sdk.__version__", package_dir={"": "src"}, root_dir=ROOT) == cfcsp_sdk.__version__
    installed = importlib.metadata.version("cfcsp-sdk")
    assert installed == cfcsp_sdk.__version__, "the installed metadata is stale: pip install -e . again"
