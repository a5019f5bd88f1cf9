"""Outputs appear whole or not at all; paths named by a model folder stay inside it (io/files.py)."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cfcsp_sdk import UnsafeFileError
from cfcsp_sdk.io.files import atomic_open, atomic_path, file_inside, write_text_atomic


def test_whole_file_replaces_the_old_one_with_the_usual_mode(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    write_text_atomic(path, "new\n" * 1000)
    assert path.read_text() == "new\n" * 1000
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["out.csv"]


def test_an_error_mid_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write("half")
            raise RuntimeError("the writer failed")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert path.read_text() == "previous" and os.listdir(tmp_path) == ["out.json"]
    with pytest.raises(FileNotFoundError):
        write_text_atomic(tmp_path / "no-such-folder" / "x.txt", "x")


def _run(code: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_full_disk_keeps_the_old_file(tmp_path):
    """A real write failure: the file-size limit (RLIMIT_FSIZE) makes write() fail with EFBIG, as a full
    disk fails with ENOSPC."""
    path = tmp_path / "out.csv"
    path.write_text("previous")
    proc = _run(f"""
        import resource, signal
        from cfcsp_sdk.io.files import write_text_atomic
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            write_text_atomic({str(path)!r}, "x" * 1_000_000)
        except OSError as exc:
            print("OSError", exc.errno)
        """)
    out, err = proc.communicate(timeout=60)
    assert out.split() == ["OSError", "27"], err  # EFBIG
    assert path.read_text() == "previous" and os.listdir(tmp_path) == ["out.csv"]


def test_kill_9_during_the_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("previous")
    proc = _run(f"""
        import sys, time
        from cfcsp_sdk.io.files import atomic_open
        with atomic_open({str(path)!r}) as f:
            f.write("partial row\\n")
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
        """)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert path.read_text() == "previous"
    # what a kill -9 can leave is a hidden temporary file next to it, never a cut file under the real name
    assert all(n == "out.csv" or (n.startswith(".out.csv.") and ".partial" in n) for n in os.listdir(tmp_path))


def test_a_destination_symlink_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    write_text_atomic(link, "result")
    assert victim.read_text() == "keep" and not link.is_symlink() and link.read_text() == "result"


@pytest.mark.parametrize("name", ["../x.onnx", "/etc/passwd", "a/../../x", "..\\x", "C:/x", "", "a\x00b"])
def test_names_that_leave_the_folder_are_refused(tmp_path, name):
    with pytest.raises(UnsafeFileError):
        file_inside(tmp_path, name)


def test_symlinks_are_resolved(tmp_path):
    folder = tmp_path / "repo"
    (folder / "sub").mkdir(parents=True)
    (tmp_path / "outside.bin").write_bytes(b"x")
    (folder / "inner.bin").write_bytes(b"y")
    (folder / "out.bin").symlink_to(tmp_path / "outside.bin")
    (folder / "in.bin").symlink_to("inner.bin")
    (folder / "sub" / "up").symlink_to(tmp_path)
    assert file_inside(folder, "in.bin") == folder / "in.bin"
    assert file_inside(folder, "sub/inner-to-be.bin") == folder / "sub" / "inner-to-be.bin"
    for name in ("out.bin", "sub/up/outside.bin"):
        with pytest.raises(UnsafeFileError, match="outside the model folder"):
            file_inside(folder, name)
    # for writing, a link in the last component is replaced by the write, so it is not followed
    assert file_inside(folder, "out.bin", for_writing=True) == folder / "out.bin"
    with pytest.raises(UnsafeFileError):
        file_inside(folder, "sub/up/x.bin", for_writing=True)


def test_hub_cache_snapshots_may_link_into_their_blob_store(tmp_path):
    repo = tmp_path / "models--acme--net"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (repo / "blobs" / "123").write_bytes(b"w")
    (snap / "coarse.onnx").symlink_to(Path("..", "..", "blobs", "123"))
    (tmp_path / "secret").write_bytes(b"s")
    (snap / "negative.onnx").symlink_to(tmp_path / "secret")
    assert file_inside(snap, "coarse.onnx").read_bytes() == b"w"
    with pytest.raises(UnsafeFileError):
        file_inside(snap, "negative.onnx")
