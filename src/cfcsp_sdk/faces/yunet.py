"""YuNet face detector (5 landmarks) run with ONNX Runtime.

Works with the fixed-input models (1 x 3 x 640 x 640, e.g. the Hub's
``opencv/face_detection_yunet`` ``face_detection_yunet_2023mar.onnx``) by letterboxing, and with
dynamic-shape models by padding the image to a multiple of 32. Input: BGR float32 0..255.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from cfcsp_sdk.errors import BackendError, ModelNotFoundError
from cfcsp_sdk.faces.base import Detection, FaceDetector, as_box, check_face_limits, clip_detections, nms
from cfcsp_sdk.hub import offline_mode

HUB_REPO = "opencv/face_detection_yunet"
HUB_FILE = "face_detection_yunet_2023mar.onnx"
STRIDES = (8, 16, 32)


def _resolve_model(model: str | os.PathLike[str] | None, revision: str | None, local_files_only: bool) -> Path:
    if model is not None and Path(model).is_file():
        return Path(model)
    if model is not None and Path(model).suffix == ".onnx":
        raise ModelNotFoundError(f"no YuNet model file at {model}")
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    repo = str(model) if model is not None else HUB_REPO
    offline = local_files_only or offline_mode()
    try:
        return Path(hf_hub_download(repo, HUB_FILE, revision=revision, local_files_only=offline))
    except (hf_errors.LocalEntryNotFoundError, hf_errors.HfHubHTTPError, OSError) as exc:
        raise ModelNotFoundError(
            f"YuNet model {HUB_FILE} from Hub repo {repo!r} is not available ({type(exc).__name__}); "
            "download it once online or pass model='path/to/yunet.onnx'"
        ) from exc


class YuNetDetector(FaceDetector):
    """YuNet with our own decoding and NMS.

    Args:
        model: path to a YuNet ``.onnx`` file, a Hub repo id holding ``face_detection_yunet_2023mar.onnx``,
            or ``None`` for ``opencv/face_detection_yunet``.
        min_score: minimum face score (0..1).
        nms_threshold: IoU above which overlapping boxes are suppressed.
        max_side: dynamic models see images scaled so the longer side is at most this.
        min_face: boxes smaller than this many pixels (shorter side, original image) are dropped.
        min_face_ratio: boxes whose shorter side is below this fraction of the image's shorter side
            are dropped (0 disables it).
        threads: ONNX Runtime intra-op threads (0: one per physical core).
        allow_spinning: let ONNX Runtime's idle threads busy-wait (see
            :func:`cfcsp_sdk.onnx_runtime.session_options`).

    Boxes are clipped to the image; landmarks are not.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        min_score: float = 0.6,
        nms_threshold: float = 0.3,
        max_side: int = 640,
        min_face: float = 10.0,
        min_face_ratio: float = 0.0,
        threads: int = 0,
        allow_spinning: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
    ) -> None:
        from cfcsp_sdk.io.onnx_external_data import check_external_data
        from cfcsp_sdk.onnx_runtime import session_options

        check_face_limits(min_face, min_face_ratio, min_score)
        self.path = _resolve_model(model, revision, local_files_only)
        check_external_data(self.path)  # its weights' files must lie next to it, as for our networks
        opts = session_options(threads, 1, allow_spinning)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise BackendError(f"could not load YuNet model {self.path}: {exc}") from exc
        shape = self.session.get_inputs()[0].shape
        self.input_name = self.session.get_inputs()[0].name
        self.fixed = (shape[2], shape[3]) if isinstance(shape[2], int) and isinstance(shape[3], int) else None
        self.batch_dynamic = not isinstance(shape[0], int)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.min_score, self.nms_threshold = min_score, nms_threshold
        self.max_side, self.min_face, self.min_face_ratio = max_side, min_face, min_face_ratio

    def __repr__(self) -> str:
        return f"YuNetDetector({self.path.name}, input={'x'.join(map(str, self.fixed)) if self.fixed else 'dynamic'})"

    def _canvas(self, h: int, w: int) -> tuple[int, int, float]:
        """Canvas (height, width) and the scale from image to canvas."""
        if self.fixed:
            ch, cw = self.fixed
            return ch, cw, min(ch / h, cw / w)
        scale = min(1.0, self.max_side / max(h, w))
        ch = int(np.ceil(h * scale / 32) * 32)
        cw = int(np.ceil(w * scale / 32) * 32)
        return ch, cw, scale

    def _prepare(self, image: np.ndarray, ch: int, cw: int, scale: float) -> np.ndarray:
        h, w = image.shape[:2]
        nh, nw = max(1, min(ch, round(h * scale))), max(1, min(cw, round(w * scale)))
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        canvas = np.zeros((ch, cw, 3), np.float32)
        canvas[:nh, :nw] = resized
        return canvas.transpose(2, 0, 1)

    def _decode(
        self, outs: dict[str, np.ndarray], b: int, ch: int, cw: int, scale: float, size: tuple[int, int]
    ) -> list[Detection]:
        boxes, scores, kps = [], [], []
        for s in STRIDES:
            cols = cw // s
            cls = outs[f"cls_{s}"][b, :, 0]
            obj = outs[f"obj_{s}"][b, :, 0]
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            idx = np.flatnonzero(score >= self.min_score)
            if not idx.size:
                continue
            r, c = (idx // cols).astype(np.float32), (idx % cols).astype(np.float32)
            bb = outs[f"bbox_{s}"][b, idx]
            cx, cy = (c + bb[:, 0]) * s, (r + bb[:, 1]) * s
            bw, bh = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1))
            k = outs[f"kps_{s}"][b, idx].reshape(-1, 5, 2)
            kps.append(np.stack([(c[:, None] + k[..., 0]) * s, (r[:, None] + k[..., 1]) * s], -1))
            scores.append(score[idx])
        if not boxes:
            return []
        boxes_a, scores_a, kps_a = np.concatenate(boxes), np.concatenate(scores), np.concatenate(kps)
        keep = nms(boxes_a, scores_a, self.nms_threshold)
        dets = []
        smallest = max(self.min_face, self.min_face_ratio * min(size))
        for i in keep:
            box = boxes_a[i] / scale
            if min(box[2] - box[0], box[3] - box[1]) < smallest:
                continue
            dets.append(
                Detection(
                    box=as_box(box), detection_score=float(scores_a[i]), landmarks=(kps_a[i] / scale).astype(np.float64)
                )
            )
        return clip_detections(dets, size[1], size[0])

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in one BGR uint8 image, best score first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Faces in several images; same-sized images share one network call where the model allows."""
        results: list[list[Detection]] = [[] for _ in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(img.shape[:2], []).append(i)
        for (h, w), members in groups.items():
            ch, cw, scale = self._canvas(h, w)
            step = len(members) if self.batch_dynamic else 1
            for start in range(0, len(members), step):
                part = members[start : start + step]
                x = np.stack([self._prepare(images[i], ch, cw, scale) for i in part])
                outs = dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: x})))
                for b, i in enumerate(part):
                    results[i] = self._decode(outs, b, ch, cw, scale, (h, w))
        return results
