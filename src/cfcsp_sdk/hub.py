"""Finding model repositories: a local folder, the package's own default model, or the Hugging Face Hub.

Hub downloads go through ``huggingface_hub.snapshot_download`` and so use its cache (``HF_HOME``,
``HF_HUB_CACHE`` or ``cache_dir``), its endpoint (``HF_ENDPOINT``) and revision pinning. Offline
mode (``HF_HUB_OFFLINE=1``, read at call time, or ``local_files_only=True``) serves from the cache only.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from cfcsp_sdk.config import CONFIG_NAME
from cfcsp_sdk.errors import BackendError, InvalidInputError, ModelNotFoundError
from cfcsp_sdk.io.files import atomic_path, file_inside

DEFAULT_MODEL_PACKAGE_DIR = "pretrained/ferplus-cfc"
"""Where the default model's repository lies inside the installed package."""

CARD_NAME = "README.md"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def default_model_folder() -> Path:
    """The model repository shipped inside the package (used when no model is named)."""
    folder = Path(str(resources.files("cfcsp_sdk"))) / DEFAULT_MODEL_PACKAGE_DIR
    if not (folder / CONFIG_NAME).is_file():
        raise ModelNotFoundError(
            f"the default model is missing from this installation ({folder}); name a model folder or Hub repo"
        )
    return folder


def offline_mode() -> bool:
    """Whether HF_HUB_OFFLINE asks for offline mode, read now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_model_folder(
    model: str | os.PathLike[str] | None,
    *,
    weights_suffixes: Iterable[str],
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> Path:
    """A local folder holding the model repository ``model`` (downloading it from the Hub if needed).

    Args:
        model: a folder path, a Hub repo id (``"owner/name"``), or ``None`` for the default model.
        weights_suffixes: weight-file suffixes to fetch from the Hub (e.g. ``[".onnx"]``).
        revision: a Hub branch, tag or commit hash (pinning a commit makes runs reproducible).
        cache_dir: Hub cache folder (default: huggingface_hub's, from ``HF_HOME`` / ``HF_HUB_CACHE``).
        local_files_only: never touch the network; use the cache only.
        token: Hub token for private repos (default: huggingface_hub's).
    """
    # a revision pins a Hub repo; ignoring it for a local model would let a run look pinned when it is not
    if model is None:
        if revision is not None:
            raise InvalidInputError(f"revision={revision!r} applies to Hub repo ids, not to the bundled model")
        return default_model_folder()
    if not str(model).strip():
        raise ModelNotFoundError("the model name is empty: pass a folder, a Hub repo id, or None for the bundled model")
    as_path = Path(model).expanduser()
    if as_path.is_dir():
        if revision is not None:
            raise InvalidInputError(
                f"revision={revision!r} applies to Hub repo ids, not to the local folder {str(model)!r}"
            )
        if not (as_path / CONFIG_NAME).is_file():
            raise ModelNotFoundError(f"{as_path} is a folder but holds no {CONFIG_NAME}; it is not a model repository")
        file_inside(as_path, CONFIG_NAME, CONFIG_NAME)  # a link to a file elsewhere is not read
        return as_path
    model = str(model)
    if as_path.exists() or not _REPO_ID.fullmatch(model):
        raise ModelNotFoundError(f"no model repository folder at {model!r} (and it is not a Hub repo id)")

    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    offline = local_files_only or offline_mode()

    def download(patterns: list[str]) -> Path:
        try:
            return Path(
                huggingface_hub.snapshot_download(
                    repo_id=model,
                    revision=revision,
                    cache_dir=None if cache_dir is None else Path(cache_dir),
                    local_files_only=offline,
                    token=token,
                    allow_patterns=patterns,
                    library_name="cfcsp-sdk",
                )
            )
        except hf_errors.LocalEntryNotFoundError as exc:
            why = (
                "offline mode (HF_HUB_OFFLINE=1 or local_files_only=True)"
                if offline
                else "the Hub could not be reached"
            )
            raise ModelNotFoundError(
                f"model {model!r} (revision {revision or 'main'}) is not in the Hugging Face cache and {why}; "
                f"download it once online, or point cache_dir/HF_HOME at a cache holding it. ({exc})"
            ) from exc
        except hf_errors.RevisionNotFoundError as exc:
            raise ModelNotFoundError(f"revision {revision!r} does not exist in Hub repo {model!r}") from exc
        except hf_errors.RepositoryNotFoundError as exc:
            raise ModelNotFoundError(f"no Hub repo {model!r} (or it is private and no valid token was given)") from exc
        except hf_errors.HfHubHTTPError as exc:
            raise ModelNotFoundError(f"downloading {model!r} from the Hub failed: {exc}") from exc

    path = download([CONFIG_NAME, CARD_NAME] + [f"*{s}" for s in weights_suffixes])
    if not (path / CONFIG_NAME).is_file():
        raise ModelNotFoundError(f"Hub repo {model!r} (revision {revision or 'main'}) has no {CONFIG_NAME}")
    file_inside(path, CONFIG_NAME, CONFIG_NAME)
    if ".onnx" in weights_suffixes:
        # ONNX files may keep their weights in other files, which only the ONNX files name
        extra = _missing_external_data(path)
        if extra:
            download(extra)
    return path


def _missing_external_data(folder: Path) -> list[str]:
    """External-data files the ONNX files in ``folder`` name but the folder lacks (each name checked
    to be a plain path inside the folder first)."""
    from cfcsp_sdk.io.onnx_external_data import external_data_locations

    missing = []
    for onnx_file in sorted(folder.glob("*.onnx")):
        try:
            locations = external_data_locations(onnx_file)
        except BackendError:
            continue  # not an ONNX file: the loader says so if a network needs it
        for tensor, location in locations:
            if location is not None:
                path = file_inside(folder, location, f"external data of tensor {tensor!r} in {onnx_file.name}")
                if not path.exists():
                    missing.append(location)
    return list(dict.fromkeys(missing))


WEIGHT_SUFFIXES = (".safetensors", ".onnx")
"""The weight formats of a model repository, one file per network each (the torch and ONNX backends'); the
one list of them that the Recognizer, ``cfcsp push`` and the Hub code read."""


def repository_file_names(
    folder: Path, networks: Iterable[str], suffixes: Iterable[str] = WEIGHT_SUFFIXES
) -> list[str]:
    """The files that make up the model repository ``folder`` (whether present or not): config.json,
    the model card, ``<network><suffix>`` for every network and suffix, and the external-data files
    the ONNX files name (each checked to lie inside the folder).

    Raises:
        UnsafeFileError: a name or an ONNX external-data location leads outside the folder.
    """
    from cfcsp_sdk.io.onnx_external_data import check_external_data

    names = [CONFIG_NAME, CARD_NAME]
    for net in networks:
        for suffix in suffixes:
            name = f"{net}{suffix}"
            names.append(name)
            path = file_inside(folder, name, f"weights file of network {net!r}")
            if suffix == ".onnx" and path.is_file():
                names += [p.relative_to(folder).as_posix() for p in check_external_data(path)]
    return list(dict.fromkeys(names))


def copy_repository_files(src: Path, dst: Path, names: Iterable[str]) -> list[Path]:
    """Copy the named files that exist in ``src`` to ``dst``; returns the copies.

    Each source must resolve inside ``src`` (symlinks into a Hub cache's blob store are followed) and
    each destination inside ``dst``; every copy is written whole or not at all.

    Raises:
        UnsafeFileError: a name or a symlink leads outside ``src`` or ``dst``.
    """
    dst.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in names:
        source = file_inside(src, name, "repository file")
        target = file_inside(dst, name, "repository file", for_writing=True)
        if source.is_file() and (target.is_symlink() or source.resolve() != target.resolve()):
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                shutil.copyfile(source.resolve(), tmp)
            copied.append(target)
        elif target.is_file():
            copied.append(target)
    return copied


def upload_folder(
    folder: Path,
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload cfcsp-sdk model repository",
    endpoint: str | None = None,
) -> str:
    """Create ``repo_id`` if needed (and the branch ``revision``), upload the model repository in
    ``folder``; returns the commit URL.

    Only the repository's own files are uploaded (config.json, the model card, each network's weight
    files and their ONNX external data), each checked to lie inside ``folder``: a stray file or a symlink
    pointing elsewhere (``~/.ssh/id_rsa``) is never published.

    Raises:
        ModelConfigError: config.json is invalid.
        UnsafeFileError: a repository file leads outside ``folder``.
    """
    from huggingface_hub import HfApi

    from cfcsp_sdk.config import ModelConfig

    folder = Path(folder)
    config = ModelConfig.from_file(folder / CONFIG_NAME)
    names = [n for n in repository_file_names(folder, config.networks) if (folder / n).is_file()]

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        revision=revision,
        commit_message=commit_message,
        allow_patterns=names,
    )
    return str(getattr(info, "commit_url", info))
