"""MTCNN face detector (P-Net, R-Net, O-Net; Zhang et al. 2016), the detector the CFC-SP paper used.

The trained weights come from the MIT-licensed PyPI package ``mtcnn`` (installed with this SDK), read
at run time from its ``assets/weights/{pnet,rnet,onet}.lz4`` files with our restricted unpickler
(arrays only; nothing of that package is imported, and it needs no TensorFlow). The three networks
are rebuilt here as ONNX graphs for ONNX Runtime (default) or as torch modules (``backend="torch"``).
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from cfcsp_sdk.errors import BackendError, ModelNotFoundError
from cfcsp_sdk.faces.detection import Detection, nms
from cfcsp_sdk.safe_pickle import load_joblib_lz4_arrays

# Layer programmes over the weight lists of the mtcnn package (Keras order: conv kernels HWIO,
# PReLU slopes, dense kernels [in, out]). "flatten_whc" flattens in (width, height, channel) order,
# as the original Caffe networks' fully connected layers expect.
_PROGRAMS: dict[str, dict[str, Any]] = {
    "pnet": {
        "body": [("conv", 0), ("prelu", 2), ("pool", 2, 2, "same"), ("conv", 3), ("prelu", 5), ("conv", 6), ("prelu", 8)],
        "heads": [("conv", 9, False), ("conv", 11, True)],
        "size": None,
    },
    "rnet": {
        "body": [("conv", 0), ("prelu", 2), ("pool", 3, 2, "same"), ("conv", 3), ("prelu", 5), ("pool", 3, 2, "valid"),
                 ("conv", 6), ("prelu", 8), ("flatten_whc",), ("dense", 9), ("prelu", 11)],
        "heads": [("dense", 12, False), ("dense", 14, True)],
        "size": 24,
    },
    "onet": {
        "body": [("conv", 0), ("prelu", 2), ("pool", 3, 2, "same"), ("conv", 3), ("prelu", 5), ("pool", 3, 2, "valid"),
                 ("conv", 6), ("prelu", 8), ("pool", 2, 2, "same"), ("conv", 9), ("prelu", 11), ("flatten_whc",),
                 ("dense", 12), ("prelu", 14)],
        "heads": [("dense", 15, False), ("dense", 17, False), ("dense", 19, True)],
        "size": 48,
    },
}


def mtcnn_weights_dir() -> Path:
    """The ``mtcnn`` package's weights folder, found without importing the package."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError("the 'mtcnn' package (which carries MTCNN's weights) is not installed: pip install mtcnn")
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
        outputs.append(onnx_proto.value_info(y, ["N", channels, "h", "w"] if kind == "conv" else ["N", channels]))
    size = prog["size"]
    shape = ["N", 3, size, size] if size else ["N", 3, "H", "W"]
    return onnx_proto.model(nodes, name, [onnx_proto.value_info("input", shape)], outputs, inits,
                            opset=17, ir_version=8)


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

    def __init__(self, name: str, weights: list[np.ndarray], backend: str, threads: int) -> None:
        self.backend = backend
        if backend == "onnx":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.log_severity_level = 3
            self.session = ort.InferenceSession(build_onnx(name, weights), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
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


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Bilinear crops of ``boxes`` resized to ``size`` (zeros outside the image), as N x 3 x S x S."""
    h, w = image.shape[:2]
    out = np.empty((len(boxes), 3, size, size), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes[:, :4]):
        sx = (x2 - x1) / w * (w - 1) / (size - 1)
        sy = (y2 - y1) / h * (h - 1) / (size - 1)
        m = np.array([[sx, 0, x1 / w * (w - 1)], [0, sy, y1 / h * (h - 1)]], np.float64)
        crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out[i] = crop.transpose(2, 0, 1)
    return out


class MtcnnDetector:
    """MTCNN: image pyramid through P-Net, refinement by R-Net, boxes and five landmarks from O-Net.

    Args:
        backend: ``"onnx"`` (ONNX Runtime, default) or ``"torch"``.
        min_face: smallest face side to look for, in pixels.
        scale_factor: image pyramid step.
        thresholds: face-probability thresholds of P-, R- and O-Net.
        nms_thresholds: IoU thresholds (P-Net within a scale, across scales, R-Net, O-Net by min area).
        weights_dir: folder with ``pnet.lz4``, ``rnet.lz4``, ``onet.lz4`` (default: the mtcnn package's).
        threads: ONNX Runtime intra-op threads (0: its default).
    """

    def __init__(
        self,
        backend: str = "onnx",
        min_face: float = 20.0,
        scale_factor: float = 0.709,
        thresholds: Sequence[float] = (0.6, 0.7, 0.8),
        nms_thresholds: Sequence[float] = (0.5, 0.7, 0.7, 0.7),
        weights_dir: str | Path | None = None,
        threads: int = 0,
    ) -> None:
        folder = Path(weights_dir) if weights_dir is not None else mtcnn_weights_dir()
        weights = load_mtcnn_weights(str(folder))
        self.pnet, self.rnet, self.onet = (_Runner(n, weights[n], backend, threads) for n in ("pnet", "rnet", "onet"))
        self.min_face, self.scale_factor = float(min_face), float(scale_factor)
        self.thresholds, self.nms_thresholds = tuple(thresholds), tuple(nms_thresholds)

    def __repr__(self) -> str:
        return f"MtcnnDetector(backend={self.pnet.backend!r}, min_face={self.min_face})"

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in one BGR uint8 image, best score first."""
        norm = (image[..., ::-1].astype(np.float32) - 127.5) / 128.0
        h, w = norm.shape[:2]
        boxes = self._stage1(norm)
        if len(boxes):
            boxes = self._stage2(norm, boxes)
        if not len(boxes):
            return []
        boxes, landmarks = self._stage3(norm, boxes)
        return [Detection(box=tuple(float(v) for v in b[:4]), score=float(b[4]), landmarks=lm.astype(np.float64))
                for b, lm in zip(boxes, landmarks)]

    def _stage1(self, norm: np.ndarray) -> np.ndarray:
        h, w = norm.shape[:2]
        scale = 12.0 / self.min_face
        found = []
        while min(h, w) * scale >= 12:
            hs, ws = int(math.ceil(h * scale)), int(math.ceil(w * scale))
            img = cv2.resize(norm, (ws, hs), interpolation=cv2.INTER_AREA)
            reg, prob = self.pnet(img.transpose(2, 0, 1)[None])
            p = prob[0, 1]
            ys, xs = np.nonzero(p > self.thresholds[0])
            if len(ys):
                b = np.stack([2 * xs, 2 * ys, 2 * xs + 12, 2 * ys + 12], 1).astype(np.float64) / scale
                cand = np.concatenate([b, p[ys, xs, None], reg[0][:, ys, xs].T], axis=1)
                found.append(cand[nms(cand[:, :4], cand[:, 4], self.nms_thresholds[0])])
            scale *= self.scale_factor
        if not found:
            return np.zeros((0, 5))
        cand = np.concatenate(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], self.nms_thresholds[1])]
        w_, h_ = cand[:, 2] - cand[:, 0], cand[:, 3] - cand[:, 1]
        boxes = cand[:, :4] + cand[:, 5:9] * np.stack([w_, h_, w_, h_], 1)
        return _square(np.concatenate([boxes, cand[:, 4:5]], 1))

    def _stage2(self, norm: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        reg, prob = self.rnet(_crops(norm, boxes, 24))
        keep = prob[:, 1] > self.thresholds[1]
        boxes, reg, score = boxes[keep], reg[keep], prob[keep, 1]
        if not len(boxes):
            return np.zeros((0, 5))
        k = nms(boxes[:, :4], score, self.nms_thresholds[2])
        return _square(np.concatenate([_regress(boxes[k], reg[k]), score[k, None]], 1))

    def _stage3(self, norm: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reg, lm, prob = self.onet(_crops(norm, boxes, 48))
        keep = prob[:, 1] > self.thresholds[2]
        boxes, reg, lm, score = boxes[keep], reg[keep], lm[keep], prob[keep, 1]
        if not len(boxes):
            return np.zeros((0, 5)), np.zeros((0, 5, 2))
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        landmarks = np.stack([w * lm[:, :5] + boxes[:, 0:1] - 1, h * lm[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        out = np.concatenate([_regress(boxes, reg), score[:, None]], 1)
        k = nms(out[:, :4], out[:, 4], self.nms_thresholds[3], mode="min")
        return out[k], landmarks[k]
