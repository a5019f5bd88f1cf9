"""The Recognizer: a loaded model repository (config + cascade + smoother) that predicts expressions."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal, Optional, overload

import numpy as np

from cfcsp_sdk.backends import Backend, get_backend
from cfcsp_sdk.cascade import Cascade, CascadeOutput
from cfcsp_sdk.config import CONFIG_NAME, FinePolicy, ModelConfig, Rule, SmoothingMode
from cfcsp_sdk.errors import InvalidInputError, ModelNotFoundError
from cfcsp_sdk.hub import CARD_NAME, copy_repository_files, resolve_model_folder, upload_folder
from cfcsp_sdk.preprocess import CropColor, Crops, crops_to_batch, split_crops
from cfcsp_sdk.results import FaceBatchResult, FacePrediction
from cfcsp_sdk.smoother import Smoother, softmax

WEIGHT_SUFFIXES = (".safetensors", ".onnx")


class Recognizer:
    """Facial expression recognition with a CFC-SP model.

    ``Recognizer()`` loads the default model shipped with the package; ``Recognizer("owner/repo")`` or
    ``Recognizer("path/to/folder")`` loads another model repository (see :meth:`from_pretrained`, which
    takes the same arguments).

    Args:
        model: a model folder, a Hugging Face Hub repo id, or ``None`` for the default model.
        revision: Hub branch, tag or commit hash.
        backend: ``"onnx"`` (default), ``"torch"``, another registered backend's name, or a Backend.
        backend_options: keyword arguments for the backend (``device``, ``intra_op_num_threads``, ...).
        cache_dir: Hub cache folder.
        local_files_only: use the Hub cache only, never the network.
        token: Hub token for private repos.
        rule: cascade decision rule, ``"hard"`` or ``"soft"`` (default: the model's).
        fine_policy: ``"when_needed"`` or ``"always"`` (default: the model's).
        smoothing_window: SP window in frames (default: the model's); 1 disables temporal context.
        smoothing_mode: ``"centered"`` or ``"causal"`` (default: the model's).
        batch_size: faces per network call.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        revision: str | None = None,
        backend: str | Backend = "onnx",
        backend_options: dict[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        rule: Rule | None = None,
        fine_policy: FinePolicy | None = None,
        smoothing_window: int | None = None,
        smoothing_mode: SmoothingMode | None = None,
        batch_size: int = 64,
    ) -> None:
        self.backend = get_backend(backend, **(backend_options or {}))
        self.folder = resolve_model_folder(
            model,
            weights_suffixes=[self.backend.weights_suffix],
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
        )
        self.config = ModelConfig.from_file(self.folder / CONFIG_NAME)
        networks = {
            name: self.backend.load_network(self.folder, name, spec) for name, spec in self.config.networks.items()
        }
        self.cascade = Cascade(self.config.cascade, networks, rule=rule, fine_policy=fine_policy)
        self.smoother = Smoother(
            window=smoothing_window if smoothing_window is not None else self.config.smoothing.window,
            mode=smoothing_mode or self.config.smoothing.mode,
        )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike[str] | None = None, **kwargs: Any) -> "Recognizer":
        """Load a model repository from a folder, the Hub or the package (``None``); see the class docs."""
        return cls(model, **kwargs)

    def __repr__(self) -> str:
        return (f"Recognizer(model={self.config.name or str(self.folder)!r}, backend={self.backend.name!r}, "
                f"labels={list(self.labels)}, {self.cascade!r}, {self.smoother!r})")

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's final labels, in output order."""
        return self.config.labels

    # ---- saving and publishing -------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        """Write this model's repository (config.json, model card, every weight file it has) to ``folder``."""
        dst = Path(folder)
        names = [CONFIG_NAME, CARD_NAME] + [
            f"{net}{suffix}" for net in self.config.networks for suffix in WEIGHT_SUFFIXES
        ]
        copy_repository_files(self.folder, dst, names)
        for net in self.config.networks:
            if not any((dst / f"{net}{s}").is_file() for s in WEIGHT_SUFFIXES):
                raise ModelNotFoundError(f"no weights for network {net!r} in {self.folder} to save")
        return dst

    def push_to_hub(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        token: str | None = None,
        private: bool | None = None,
        commit_message: str = "Upload cfcsp-sdk model repository",
    ) -> str:
        """Upload this model repository to the Hub as ``repo_id`` (branch ``revision``); returns the commit URL."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(tmp)
            return upload_folder(folder, repo_id, revision=revision, token=token, private=private,
                                 commit_message=commit_message)

    # ---- prediction ------------------------------------------------------------------------
    def preprocess(self, crops: Crops, color: CropColor = "bgr") -> np.ndarray:
        """The float32 NCHW batch the networks see for these aligned crops."""
        faces, _ = split_crops(crops)
        return crops_to_batch(faces, self.config.preprocessing, color)

    def run_cascade(self, batch: np.ndarray) -> CascadeOutput:
        """Run the cascade on a preprocessed batch, ``batch_size`` faces per network call."""
        outs = [self.cascade(batch[i : i + self.batch_size]) for i in range(0, len(batch), self.batch_size)]
        if not outs:
            outs = [self.cascade(batch)]
        return CascadeOutput(
            coarse_logits=np.concatenate([o.coarse_logits for o in outs]),
            fine_logits={k: np.concatenate([o.fine_logits[k] for o in outs]) for k in outs[0].fine_logits},
            probabilities=np.concatenate([o.probabilities for o in outs]),
            labels=np.concatenate([o.labels for o in outs]),
        )

    def to_predictions(self, out: CascadeOutput) -> list[FacePrediction]:
        """One :class:`FacePrediction` per face of a cascade output."""
        spec = self.config.cascade
        coarse = softmax(out.coarse_logits)
        fine = {i: softmax(v) for i, v in out.fine_logits.items()}
        preds = []
        for r in range(len(out.labels)):
            k = int(out.labels[r])
            fine_scores: dict[str, Optional[dict[str, float]]] = {}
            for i, g in enumerate(spec.groups):
                row = fine[i][r]
                fine_scores[spec.coarse_labels[g.coarse_index]] = (
                    None if np.isnan(row).any() else dict(zip(g.labels, map(float, row)))
                )
            preds.append(FacePrediction(
                label=self.labels[k],
                label_index=k,
                probabilities=dict(zip(self.labels, map(float, out.probabilities[r]))),
                coarse_scores=dict(zip(spec.coarse_labels, map(float, coarse[r]))),
                fine_scores=fine_scores,
            ))
        return preds

    @overload
    def predict_faces(self, crops: np.ndarray, color: CropColor = "bgr") -> FacePrediction | FaceBatchResult: ...
    @overload
    def predict_faces(self, crops: list[np.ndarray], color: CropColor = "bgr") -> FaceBatchResult: ...

    def predict_faces(self, crops: Crops, color: CropColor = "bgr") -> FacePrediction | FaceBatchResult:
        """Predict the expression of aligned face crops (no detection, no smoothing).

        Args:
            crops: uint8 crops aligned to the model's face template: one ``H x W x 3`` (or ``H x W``
                grey) array, an ``N x H x W x 3`` array, or a list of arrays (sizes may differ;
                each is resized to the model's input size).
            color: channel order of colour crops, ``"bgr"`` (OpenCV's ``imread``, the default) or ``"rgb"``.

        Returns:
            A :class:`FacePrediction` for a single crop, a :class:`FaceBatchResult` for a batch.
        """
        faces, single = split_crops(crops)
        batch = crops_to_batch(faces, self.config.preprocessing, color)
        preds = self.to_predictions(self.run_cascade(batch))
        return preds[0] if single else FaceBatchResult(preds, self.labels)
