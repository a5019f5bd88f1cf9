"""Label a corpus on a Ray cluster with Ray Data (``pip install 'cfcsp-sdk[ray]'``).

The pipeline, built by :func:`build_dataset` and run by :func:`run_batch_ray`:

1. the list of videos still to do becomes a Ray Dataset (``ray.data.from_items``);
2. ``map_batches`` runs :class:`VideoActor` in an actor pool (``ActorPoolStrategy(size=workers)``),
   one Recognizer per actor, one video per call;
3. for each video the actor starts a Ray task that decodes and samples the frames
   (:func:`decode_frames`, a streaming generator: chunks of frames flow to the actor as they are
   decoded, at most a few chunks ahead, so memory does not grow with the video's length and decoding
   overlaps the networks);
4. the actor runs the same video pipeline as :meth:`Recognizer.predict_video` over those frames
   (detection, tracking, the cascade, SP), writes the video's result files (to the output folder,
   which on a multi-node cluster must be storage every node sees) and returns its manifest record;
5. the driver appends each record to ``manifest.jsonl`` as it arrives.

The output folder, resuming, file naming and the manifest are those of :mod:`cfcsp_sdk.batch`; a
video's results equal the single-process path's.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cfcsp_sdk.batch import (
    ABAW_FOLDER,
    MANIFEST_NAME,
    BatchReport,
    BatchSetup,
    Manifest,
    OutputFormat,
    Plan,
    VideoRecord,
    batch_setup,
    build_recognizer,
    failed_record,
    locked_output,
    result_record,
    skip_complete,
    write_outputs,
)
from cfcsp_sdk.errors import CfcspError, require_positive_int, require_positive_number
from cfcsp_sdk.progress import BatchProgress
from cfcsp_sdk.sampling import Sampling, chunks


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise CfcspError("--ray needs Ray Data: pip install 'cfcsp-sdk[ray]'") from None
    return ray


def decode_frames(source: str, sampling: dict[str, Any], chunk_frames: int) -> Iterator[Any]:
    """Decode and sample one video with :class:`VideoReader` (run as a Ray streaming-generator task).

    Yields the reader's :class:`VideoInfo`, then lists of up to ``chunk_frames`` :class:`Frame`\\ s, then
    a dict of the reader's public attributes after the last frame (``error``, ``frames_read``...).
    Raises :class:`MediaError` (inside Ray's task error) if the video cannot be opened.
    """
    from cfcsp_sdk.io.video import VideoReader

    reader = VideoReader(source, **Sampling(**sampling).kwargs())
    yield reader.info
    yield from chunks(reader, chunk_frames)
    yield {k: v for k, v in vars(reader).items() if not k.startswith("_") and k != "info"}


class RemoteFrames:
    """The frames of one video decoded by a :func:`decode_frames` Ray task, with the interface of
    :class:`VideoReader` that :meth:`Recognizer.predict_video` reads (``info``, iteration, then
    ``error`` and the reader's other public attributes once iteration ends).

    Args:
        source: the video path or URL (as the task's node sees it).
        sampling: ``fps``, ``stride``, ``max_frames``.
        chunk_frames: frames per object sent from the task.
        num_cpus: the task's CPU reservation.
        ahead: chunks the task may decode before the consumer takes them.
    """

    def __init__(
        self, source: str, sampling: dict[str, Any], chunk_frames: int = 16, num_cpus: float = 1.0, ahead: int = 4
    ) -> None:
        ray = _ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # decode on this actor's node when it has room: raw frames (1.5 MB each at 960x540) then go
        # through the node's shared memory, not the network
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        task = ray.remote(decode_frames).options(
            num_cpus=num_cpus,
            num_returns="streaming",
            _generator_backpressure_num_objects=ahead,
            scheduling_strategy=here,
        )
        self._ray = ray
        self._refs = task.remote(source, sampling, chunk_frames)
        self.info = self._get(next(self._refs))
        self.error: str | None = None
        # set from the task's last message once iteration ends (the FrameSource attributes)
        self.frames_read = 0
        self.skipped_frames: list[int] = []
        self.skipped_times: list[float] = []

    def _get(self, ref: Any) -> Any:
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)  # the task's own exception (our MediaError)
            raise (cause if isinstance(cause, Exception) else exc) from None

    def __iter__(self) -> Iterator[Any]:
        for ref in self._refs:
            item = self._get(ref)
            if isinstance(item, dict):
                self.__dict__.update(item)
            else:
                yield from item


class VideoActor:
    """Ray Data ``map_batches`` callable: one Recognizer per actor, one video per row.

    Input rows: ``source``, ``output``, ``abaw`` ("" for none), ``index``. Output rows: ``index`` and
    ``record`` (the video's :class:`VideoRecord` as JSON).
    """

    def __init__(
        self,
        model: Any,
        options: dict[str, Any],
        threads: int,
        out: str,
        fmt: OutputFormat,
        sampling: Sampling,
        chunk_frames: int,
        decode_cpus: float,
    ) -> None:
        self.recognizer = build_recognizer(model, options, threads)
        self.out, self.fmt, self.sampling = Path(out), fmt, sampling
        self.chunk_frames, self.decode_cpus = chunk_frames, decode_cpus

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = []
        for source, output, abaw in zip(batch["source"], batch["output"], batch["abaw"]):
            plan = Plan(str(source), Path(str(output)), Path(str(abaw)) if abaw else None)
            t0 = time.perf_counter()
            try:
                frames = RemoteFrames(plan.source, self.sampling.kwargs(), self.chunk_frames, self.decode_cpus)
                result = self.recognizer.predict_video(frames, chunk_frames=self.chunk_frames)
                write_outputs(result, plan, self.fmt)
                record = result_record(result, plan, self.out, time.perf_counter() - t0)
            except Exception as exc:  # one bad video must not stop the corpus
                record = failed_record(plan.source, exc, time.perf_counter() - t0)
            records.append(json.dumps(record.to_dict()))
        return {"index": np.asarray(batch["index"]), "record": np.asarray(records, dtype=object)}


def build_dataset(
    plans: Sequence[tuple[int, Plan]],
    out: Path,
    model: Any,
    options: dict[str, Any],
    *,
    workers: int,
    threads: int,
    fmt: OutputFormat,
    sampling: Sampling,
    chunk_frames: int,
    actor_cpus: float,
    decode_cpus: float,
) -> Any:
    """The Ray Data pipeline for ``(index, plan)`` pairs (lazy: nothing runs until it is iterated).
    Each output row is one video's ``index`` and manifest ``record`` (JSON)."""
    ray = _ray()
    items = [
        {"index": i, "source": p.source, "output": str(p.output), "abaw": str(p.abaw) if p.abaw else ""}
        for i, p in plans
    ]
    # one block per video, so every actor of the pool gets work (one block would feed a single actor)
    return ray.data.from_items(items, override_num_blocks=max(1, len(items))).map_batches(
        VideoActor,
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=min(workers, len(items))),
        num_cpus=actor_cpus,
        fn_constructor_kwargs={
            "model": model,
            "options": options,
            "threads": threads,
            "out": str(out),
            "fmt": fmt,
            "sampling": sampling,
            "chunk_frames": chunk_frames,
            "decode_cpus": decode_cpus,
        },
    )


def run_batch_ray(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    out: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    *,
    address: str | None = None,
    recognizer_options: dict[str, Any] | None = None,
    workers: int = 1,
    threads: int | None = None,
    actor_cpus: float = 1.0,
    decode_cpus: float = 1.0,
    chunk_frames: int = 16,
    format: OutputFormat = "csv",
    abaw: bool = False,
    fps: float | None = None,
    stride: int | None = 1,
    max_frames: int | None = None,
    progress: bool = True,
) -> BatchReport:
    """:func:`cfcsp_sdk.batch.run_batch` on Ray: same arguments, outputs, manifest and resuming.

    Args:
        address: the cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); ``None`` connects to
            the Ray instance this process already initialised, else starts a local one (shut down at the end).
        workers: actors, each holding one Recognizer.
        threads: intra-op threads per actor (default: ``actor_cpus`` rounded, at least 1).
        actor_cpus: Ray CPU reservation of an actor.
        decode_cpus: Ray CPU reservation of a decoding task (one runs per busy actor, so
            ``workers x (actor_cpus + decode_cpus)`` must fit the cluster).
        chunk_frames: frames per object from a decoding task to its actor (and per pipeline chunk).

    Every node must be able to import cfcsp-sdk, load the model and read the videos; with more than one
    node, ``out`` must be a folder every node can write (actors write the result files; the driver
    writes the manifest).

    Raises:
        CfcspError: Ray missing, or the cluster has fewer CPUs than the actors and decoding tasks reserve
            (it would wait forever); and as :func:`run_batch`.
    """
    chunk_frames = require_positive_int("chunk_frames", chunk_frames)
    for name, value in (("actor_cpus", actor_cpus), ("decode_cpus", decode_cpus)):
        require_positive_number(name, value)
    sampling = Sampling(fps, 1 if stride is None else stride, max_frames)
    ray = _ray()
    with batch_setup(
        inputs,
        out,
        model,
        recognizer_options=recognizer_options,
        workers=workers,
        threads=threads,
        default_threads=lambda w: max(1, round(actor_cpus)),
        format=format,
        abaw=abaw,
        sampling=sampling,
    ) as setup:
        setup.recognizer = None  # it checked the model and options; the actors build their own
        started = not ray.is_initialized()
        if started:
            ray.init(address=address, logging_level="warning", log_to_driver=False)
        try:
            cpus = ray.cluster_resources().get("CPU", 0)
            need = setup.workers * (actor_cpus + decode_cpus)
            if need > cpus:
                raise CfcspError(
                    f"{setup.workers} actors x ({actor_cpus} + {decode_cpus} decoding) CPUs = {need} > "
                    f"the cluster's {cpus:g}: use fewer --workers or smaller reservations"
                )
            ray.data.DataContext.get_current().enable_progress_bars = False
            return _run(
                ray,
                setup,
                fmt=format,
                chunk_frames=chunk_frames,
                actor_cpus=actor_cpus,
                decode_cpus=decode_cpus,
                progress=progress,
            )
        finally:
            if started:
                ray.shutdown()


def _run(ray: Any, setup: BatchSetup, *, progress: bool, **pipeline: Any) -> BatchReport:
    out, plans = setup.out, setup.plans
    records: dict[int, VideoRecord] = {}
    with locked_output(out):
        if any(p.abaw for p in plans):
            (out / ABAW_FOLDER).mkdir(exist_ok=True)
        manifest = Manifest(out / MANIFEST_NAME)
        bar = BatchProgress(progress, len(plans))
        try:
            todo = [(i, plans[i]) for i in skip_complete(plans, out, manifest, bar, records)]
            if todo:
                for row in build_dataset(
                    todo,
                    out,
                    setup.model,
                    setup.options,
                    workers=setup.workers,
                    threads=setup.threads,
                    sampling=setup.sampling,
                    **pipeline,
                ).iter_rows():
                    i = int(row["index"])
                    records[i] = VideoRecord(**json.loads(row["record"]))
                    manifest.append(records[i])
                    bar.frame(records[i].frames)
                    bar.video(records[i])
        finally:
            bar.close()
            manifest.close()
    return BatchReport(out, [records[i] for i in sorted(records)], time.perf_counter() - setup.started)
