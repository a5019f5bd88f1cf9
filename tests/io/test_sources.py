"""expand_inputs: files, folders, globs, list files and URLs into one ordered list of sources."""

from __future__ import annotations

import os

import pytest

from cfcsp_sdk.errors import MediaError
from cfcsp_sdk.io.sources import VIDEO_SUFFIXES, expand_inputs


@pytest.fixture()
def tree(tmp_path):
    for rel in ["b/clip2.MP4", "b/clip1.mov", "b/notes.md", "b/deep/clip3.avi", "a.mp4", "photo.jpg"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return tmp_path


def test_folder_is_recursive_sorted_and_filtered_by_suffix(tree):
    got = expand_inputs([tree / "b"], suffixes=VIDEO_SUFFIXES)
    assert got == [str(tree / "b/clip1.mov"), str(tree / "b/clip2.MP4"), str(tree / "b/deep/clip3.avi")]


def test_glob_sorted_and_files_kept_whatever_their_suffix(tree):
    assert expand_inputs([str(tree / "b" / "*.*")], suffixes=VIDEO_SUFFIXES) == [
        str(tree / "b/clip1.mov"),
        str(tree / "b/clip2.MP4"),
    ]  # notes.md matches the glob but is no video
    assert expand_inputs([str(tree / "b/notes.md")]) == [str(tree / "b/notes.md")]  # named explicitly


def test_list_file_with_comments_relative_paths_urls_and_duplicates(tree):
    lst = tree / "b" / "list.txt"
    lst.write_text(
        f"# corpus\n\nclip1.mov\n  deep/clip3.avi  \nhttps://example.org/v/x.mp4\n{tree / 'a.mp4'}\nclip1.mov\n"
    )
    want = [
        str(tree / "b/clip1.mov"),
        str(tree / "b/deep/clip3.avi"),
        "https://example.org/v/x.mp4",
        str(tree / "a.mp4"),
    ]
    assert expand_inputs([lst]) == want
    assert expand_inputs([f"@{lst}"]) == want
    # the same file through another spelling is kept once, first occurrence first
    assert expand_inputs([str(tree / "a.mp4"), f"@{lst}"]) == [str(tree / "a.mp4")] + want[:3]


def test_nothing_matched_is_a_media_error(tree):
    with pytest.raises(MediaError, match="no such file"):
        expand_inputs([tree / "missing.mp4"])
    with pytest.raises(MediaError, match="no media file matches"):
        expand_inputs([str(tree / "*.mkv")])
    (tree / "empty").mkdir()
    with pytest.raises(MediaError, match="no media files"):
        expand_inputs([tree / "empty"])
    with pytest.raises(MediaError, match="cannot read the list"):
        expand_inputs(["@" + os.fspath(tree / "nolist.txt")])
