"""Hub integration with the real huggingface_hub client: a laid-out cache, and a loopback server
standing in for the Hub through HF_ENDPOINT (downloads, cache reuse, revisions, offline, publishing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cfcsp_sdk import ModelNotFoundError, Recognizer
from hub_server import FakeHub


def repo_files(folder: Path, names=None) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if names is None or p.name in names}


def run_py(code: str, env: dict) -> dict:
    """Run ``code`` in a fresh interpreter (huggingface_hub reads HF_* variables at import) and
    return the JSON it prints last."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


LOAD = """
import json, sys
from cfcsp_sdk import Recognizer, ModelNotFoundError
kwargs = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
try:
    r = Recognizer(%r, **%s)
    print(json.dumps({"name": r.config.name, "window": r.config.smoothing.window, "folder": str(r.folder),
                      "files": sorted(p.name for p in r.folder.iterdir())}))
except ModelNotFoundError as e:
    print(json.dumps({"error": str(e)}))
"""


@pytest.fixture()
def hub(tiny_repo):
    with FakeHub() as hub:
        repo = hub.repos.setdefault("acme/tiny-cfc", __import__("hub_server").FakeRepo())
        v1 = repo.commit(repo_files(tiny_repo))
        repo.refs["v1"] = v1
        cfg = json.loads((tiny_repo / "config.json").read_text())
        cfg["name"], cfg["smoothing"]["window"] = "tiny-v2", 3
        v2 = repo.commit({"config.json": json.dumps(cfg).encode()}, parent=v1)
        hub.shas = (v1, v2)
        yield hub


def test_download_revisions_cache_reuse_and_offline(hub, tmp_path):
    v1, v2 = hub.shas
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf")}
    latest = run_py(LOAD % ("acme/tiny-cfc", "{}"), env)
    assert latest["name"] == "tiny-v2" and latest["window"] == 3
    # the ONNX backend downloads only what it needs
    assert latest["files"] == ["README.md", "coarse.onnx", "config.json", "negative.onnx"]
    assert Path(latest["folder"]).is_relative_to(tmp_path / "hf" / "hub")
    first = len(hub.downloads())
    assert first == 4

    # same revision again: served from the cache, no file is downloaded again
    again = run_py(LOAD % ("acme/tiny-cfc", "{}"), env)
    assert again["folder"] == latest["folder"] and len(hub.downloads()) == first

    # pinned revisions: a tag and a commit hash give the old config
    by_tag = run_py(LOAD % ("acme/tiny-cfc", "{'revision': 'v1'}"), env)
    by_sha = run_py(LOAD % ("acme/tiny-cfc", f"{{'revision': '{v1}'}}"), env)
    assert by_tag["name"] == by_sha["name"] == "tiny-affwild-test" and by_sha["folder"].endswith(v1)
    missing_rev = run_py(LOAD % ("acme/tiny-cfc", "{'revision': 'no-such-branch'}"), env)
    assert "revision 'no-such-branch' does not exist" in missing_rev["error"]
    missing_repo = run_py(LOAD % ("acme/nothing", "{}"), env)
    assert "no Hub repo 'acme/nothing'" in missing_repo["error"]

    # the torch backend fetches the safetensors files of the same revision
    with_torch = run_py(LOAD % ("acme/tiny-cfc", "{'backend': 'torch'}"), env)
    assert "coarse.safetensors" in with_torch["files"]

    # offline: HF_HUB_OFFLINE=1 serves the cache and never calls the server
    hub.requests.clear()
    offline = run_py(LOAD % ("acme/tiny-cfc", "{}"), {**env, "HF_HUB_OFFLINE": "1"})
    assert offline["name"] == "tiny-v2" and hub.requests == []
    not_cached = run_py(LOAD % ("acme/other", "{}"), {**env, "HF_HUB_OFFLINE": "1"})
    assert "not in the Hugging Face cache" in not_cached["error"] and "HF_HUB_OFFLINE" in not_cached["error"]


def test_push_to_hub_then_download_the_branch(hub, tiny_repo, tmp_path, face_crops):
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": "hf_test_token"}
    code = f"""
    import json
    from cfcsp_sdk import Recognizer
    url = Recognizer({str(tiny_repo)!r}).push_to_hub("lab/pushed", revision="exp-1")
    r = Recognizer("lab/pushed", revision="exp-1", backend="torch")
    print(json.dumps({{"url": url, "name": r.config.name, "files": sorted(p.name for p in r.folder.iterdir())}}))
    """
    out = run_py(code, env)
    assert out["url"].startswith(hub.endpoint + "/lab/pushed/commit/")
    assert out["name"] == "tiny-affwild-test"
    repo = hub.repos["lab/pushed"]
    pushed = repo.commits[repo.refs["exp-1"]]
    for name, data in repo_files(tiny_repo).items():
        assert pushed[name] == data
    assert "config.json" not in repo.commits[repo.refs["main"]]  # the branch, not main, got the model


def lay_out_cache(cache: Path, repo_id: str, files: dict[str, bytes], sha: str, ref: str = "main") -> None:
    """Write the cache structure huggingface_hub uses: blobs, snapshots/<sha> links and refs."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snap = root / "snapshots" / sha
    snap.mkdir(parents=True)
    for name, data in files.items():
        blob = root / "blobs" / __import__("hub_server").git_blob_oid(data)
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snap), snap / name)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / ref).write_text(sha)


def test_laid_out_cache_works_offline(tiny_repo, tmp_path, face_crops):
    sha = "a" * 40
    lay_out_cache(tmp_path, "acme/cached", repo_files(tiny_repo), sha)
    r = Recognizer("acme/cached", cache_dir=tmp_path, local_files_only=True)
    assert r.folder == tmp_path / "models--acme--cached" / "snapshots" / sha
    ref = Recognizer(tiny_repo).predict_faces(face_crops)
    assert [p.label for p in r.predict_faces(face_crops)] == [p.label for p in ref]
    assert Recognizer("acme/cached", cache_dir=tmp_path, local_files_only=True, revision=sha).folder == r.folder
    with pytest.raises(ModelNotFoundError, match="not in the Hugging Face cache"):
        Recognizer("acme/cached", cache_dir=tmp_path, local_files_only=True, revision="b" * 40)
    # a snapshot without config.json is not a model repository
    lay_out_cache(tmp_path, "acme/empty", {"README.md": b"hi"}, sha)
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        Recognizer("acme/empty", cache_dir=tmp_path, local_files_only=True)


def test_strings_that_are_neither_folders_nor_repo_ids(tmp_path):
    for bad in ["./missing-folder", "/abs/missing", "a/b/c", str(tmp_path / "f.txt")]:
        with pytest.raises(ModelNotFoundError):
            Recognizer(bad, local_files_only=True)


def test_cli_push_publishes_a_folder(hub, tiny_repo, tmp_path):
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update({"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": "hf_test_token"})
    p = subprocess.run(
        [sys.executable, "-m", "cfcsp_sdk.cli", "push", str(tiny_repo), "lab/cli-pushed", "--revision", "v0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    repo = hub.repos["lab/cli-pushed"]
    assert repo.commits[repo.refs["v0"]]["coarse.onnx"] == (tiny_repo / "coarse.onnx").read_bytes()
    broken = tmp_path / "broken"
    shutil.copytree(tiny_repo, broken)
    (broken / "negative.onnx").unlink()
    p = subprocess.run(
        [sys.executable, "-m", "cfcsp_sdk.cli", "push", str(broken), "lab/x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "negative.onnx" in p.stderr


# ---- nothing outside the model folder is read, written or published (issue 14) ------------------------------
def _evil_config(tiny_repo, name="../../evilnet"):
    cfg = json.loads((tiny_repo / "config.json").read_text())
    cfg["networks"][name] = cfg["networks"].pop("negative")
    cfg["cascade"]["groups"][0]["network"] = name
    return json.dumps(cfg).encode()


@pytest.mark.parametrize("name", ["../../evilnet", "/tmp/evilnet"])
def test_traversing_network_names_are_refused_locally_and_from_the_hub_cache(tiny_repo, tmp_path, name):
    from cfcsp_sdk import ModelConfigError

    local = tmp_path / "a" / "b" / "repo"
    shutil.copytree(tiny_repo, local)
    (local / "config.json").write_bytes(_evil_config(tiny_repo, name))
    shutil.copy(tiny_repo / "negative.onnx", tmp_path / "a" / "evilnet.onnx")  # what the name points at
    with pytest.raises(ModelConfigError, match="plain identifier") as err:
        Recognizer(local)
    assert err.value.field == "networks"
    files = repo_files(tiny_repo)
    files["config.json"] = _evil_config(tiny_repo, name)
    lay_out_cache(tmp_path / "cache", "acme/evil", files, "c" * 40)
    with pytest.raises(ModelConfigError, match="plain identifier"):
        Recognizer("acme/evil", cache_dir=tmp_path / "cache", local_files_only=True)


def test_weight_symlinks_leading_out_of_the_folder_are_refused(tiny_repo, tmp_path):
    from cfcsp_sdk import UnsafeFileError

    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    outside = tmp_path / "elsewhere.onnx"
    shutil.move(repo / "negative.onnx", outside)
    (repo / "negative.onnx").symlink_to(outside)
    with pytest.raises(UnsafeFileError, match="outside the model folder"):
        Recognizer(repo)
    config = repo / "config.json"
    shutil.move(config, tmp_path / "config-elsewhere.json")
    config.symlink_to(tmp_path / "config-elsewhere.json")
    with pytest.raises(UnsafeFileError, match="config.json"):
        Recognizer(repo)
    config.unlink()
    shutil.move(tmp_path / "config-elsewhere.json", config)
    # a symlink that stays inside the folder is fine
    (repo / "negative.onnx").unlink()
    shutil.move(outside, repo / "real-negative.onnx")
    (repo / "negative.onnx").symlink_to("real-negative.onnx")
    assert Recognizer(repo).labels == Recognizer(tiny_repo).labels


def test_save_pretrained_copies_external_data_and_writes_only_inside(tiny_repo, tmp_path, face_crops):
    import onnx

    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    model = onnx.load(str(repo / "coarse.onnx"))
    onnx.save(model, str(repo / "coarse.onnx"), save_as_external_data=True, location="coarse.weights", size_threshold=0)
    dst = tmp_path / "saved"
    dst.mkdir()
    (dst / "coarse.safetensors").symlink_to(tmp_path / "victim")  # a planted link is replaced, not followed
    (tmp_path / "victim").write_bytes(b"keep me")
    Recognizer(repo).save_pretrained(dst)
    assert (tmp_path / "victim").read_bytes() == b"keep me"
    assert not (dst / "coarse.safetensors").is_symlink()
    assert sorted(p.name for p in dst.iterdir()) == sorted(
        [
            "config.json",
            "README.md",
            "coarse.onnx",
            "coarse.weights",
            "coarse.safetensors",
            "negative.onnx",
            "negative.safetensors",
        ]
    )
    ref = Recognizer(tiny_repo).predict_faces(face_crops)
    assert [p.label for p in Recognizer(dst).predict_faces(face_crops)] == [p.label for p in ref]


def test_push_publishes_only_repository_files_inside_the_folder(hub, tiny_repo, tmp_path):
    from cfcsp_sdk import UnsafeFileError
    from cfcsp_sdk.hub import upload_folder

    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    (repo / "notes-with-secrets.txt").write_text("not part of the model")
    upload_folder(repo, "lab/clean", token="hf_test_token", endpoint=hub.endpoint)
    pushed = hub.repos["lab/clean"].commits[hub.repos["lab/clean"].refs["main"]]
    assert sorted(n for n in pushed if n != ".gitattributes") == sorted(repo_files(tiny_repo))
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    (repo / "negative.safetensors").unlink()
    (repo / "negative.safetensors").symlink_to(secret)
    with pytest.raises(UnsafeFileError, match="outside the model folder"):
        upload_folder(repo, "lab/leak", token="hf_test_token", endpoint=hub.endpoint)
    assert "lab/leak" not in hub.repos or not any(
        b"PRIVATE KEY" in data for c in hub.repos["lab/leak"].commits.values() for data in c.values()
    )


def test_hub_download_fetches_onnx_external_data_and_refuses_escaping_names(tiny_repo, tmp_path, face_crops):
    import onnx

    repo = tmp_path / "ext"
    shutil.copytree(tiny_repo, repo)
    onnx.save(
        onnx.load(str(repo / "coarse.onnx")),
        str(repo / "coarse.onnx"),
        save_as_external_data=True,
        location="coarse.weights",
        size_threshold=0,
    )
    evil = onnx.load(str(repo / "coarse.onnx"), load_external_data=False)
    for t in evil.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = "../../../../secret.bin"
    with FakeHub() as hub:
        hub.repos.setdefault("acme/ext", __import__("hub_server").FakeRepo()).commit(repo_files(repo))
        hub.repos.setdefault("acme/evil-ext", __import__("hub_server").FakeRepo()).commit(
            {**repo_files(repo), "coarse.onnx": evil.SerializeToString()}
        )
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf")}
        out = run_py(LOAD % ("acme/ext", "kwargs"), env)
        assert "coarse.weights" in out["files"], out
        code = """
        import json
        from cfcsp_sdk import Recognizer, UnsafeFileError
        try:
            Recognizer("acme/evil-ext")
            print(json.dumps({"error": None}))
        except UnsafeFileError as e:
            print(json.dumps({"error": str(e)}))
        """
        assert "not a plain path inside the model folder" in run_py(code, env)["error"]
    ref = Recognizer(tiny_repo).predict_faces(face_crops)
    got = Recognizer(out["folder"]).predict_faces(face_crops)
    assert [p.label for p in got] == [p.label for p in ref]
