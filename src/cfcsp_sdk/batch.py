"""Label a corpus of videos: one result file per video, a JSONL manifest written as it goes, resumable.

Use :func:`run_batch` (or ``cfcsp batch``) for one machine with ``workers`` processes, and
:func:`cfcsp_sdk.batch_ray.run_batch_ray` (``cfcsp batch --ray``) for a Ray cluster. Both lay out the
output folder the same way::

    OUT/
      manifest.jsonl          one JSON line per video and run: source, status, frames, faces, seconds, error
      <name>.csv | .parquet   per-video rows (the columns of VideoResult.to_csv)
      abaw/<name>.txt         with abaw=True: the ABAW expression-challenge label file of each video

``<name>`` is the video's file stem (two inputs with the same stem get ``-<8 hex digits of the
source's hash>`` appended, so names stay stable across runs). Every file is written under a
temporary name in the same folder and renamed when complete (:func:`cfcsp_sdk.io.files.atomic_path`),
so a video's output either exists whole or not at all; a re-run skips videos whose outputs all exist (status ``skipped``) and retries the
others, which is how a crash or Ctrl-C is resumed. One batch at a time may use an output folder (a lock
file enforces it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cfcsp_sdk.errors import CfcspError, InvalidInputError, require_positive_int
from cfcsp_sdk.io.files import atomic_path
from cfcsp_sdk.io.sources import VIDEO_SUFFIXES, expand_inputs, is_url
from cfcsp_sdk.progress import BatchProgress
from cfcsp_sdk.sampling import Sampling

if TYPE_CHECKING:
    from cfcsp_sdk.recognizer import Recognizer
    from cfcsp_sdk.results import VideoResult

OutputFormat = Literal["csv", "parquet"]
Status = Literal["ok", "failed", "skipped"]
MANIFEST_NAME = "manifest.jsonl"
ABAW_FOLDER = "abaw"


@dataclass
class VideoRecord:
    """One line of the manifest: what happened to one video in one run.

    Attributes:
        source: the video path or URL, as given.
        status: ``"ok"`` (outputs written), ``"failed"`` (nothing written; ``error`` says why) or
            ``"skipped"`` (outputs already complete from an earlier run).
        output: the result file (relative to the output folder), ``None`` if failed.
        abaw: the ABAW label file (relative), ``None`` unless asked for and written.
        frames: frames processed (sampled frames), 0 if failed or skipped.
        faces: face observations (rows with a face).
        tracks: face tracks.
        seconds: wall-clock seconds spent on this video.
        error: why it failed, or (status ``ok``) why decoding stopped early (rows before it are kept).
        worker: ``host:pid`` of the process that ran the video.
        finished: UNIX time when the record was written.
    """

    source: str
    status: Status
    output: str | None = None
    abaw: str | None = None
    frames: int = 0
    faces: int = 0
    tracks: int = 0
    seconds: float = 0.0
    error: str | None = None
    worker: str | None = None
    finished: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchReport:
    """What one :func:`run_batch` call did: a record per input video, in input order."""

    out: Path
    records: list[VideoRecord]
    seconds: float

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.records)

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.records)

    def to_dict(self) -> dict[str, Any]:
        done = [r for r in self.records if r.status == "ok"]
        return {
            "out": str(self.out),
            "videos": len(self.records),
            "ok": len(done),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.frames / self.seconds, 3) if self.seconds > 0 else None,
            "videos_per_hour": round(3600 * len(done) / self.seconds, 1) if self.seconds > 0 else None,
        }


# ---- output layout --------------------------------------------------------------------------
def output_names(sources: Sequence[str]) -> dict[str, str]:
    """A file name (no suffix) per source: its stem, with ``-<hash8>`` where two sources share a stem."""

    def stem(s: str) -> str:
        base = s.rstrip("/").split("?")[0].rsplit("/", 1)[-1] if is_url(s) else Path(s).name
        name = Path(base).stem or "video"
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)

    stems = {s: stem(s) for s in sources}
    counts: dict[str, int] = {}
    for v in stems.values():
        counts[v.lower()] = counts.get(v.lower(), 0) + 1
    return {
        s: v if counts[v.lower()] == 1 else f"{v}-{hashlib.sha1(s.encode()).hexdigest()[:8]}" for s, v in stems.items()
    }


@dataclass
class Plan:
    """Where one video's outputs go (absolute paths)."""

    source: str
    output: Path
    abaw: Path | None

    def complete(self) -> bool:
        return self.output.is_file() and (self.abaw is None or self.abaw.is_file())

    def relative(self, out: Path) -> tuple[str, str | None]:
        return (str(self.output.relative_to(out)), None if self.abaw is None else str(self.abaw.relative_to(out)))


def plan_outputs(sources: Sequence[str], out: Path, fmt: OutputFormat, abaw: bool) -> list[Plan]:
    names = output_names(sources)
    return [
        Plan(s, out / f"{names[s]}.{fmt}", (out / ABAW_FOLDER / f"{names[s]}.txt") if abaw else None) for s in sources
    ]


def write_table(result: VideoResult, path: Path, fmt: OutputFormat) -> None:
    """Write the result's ``to_records()`` (its ``columns``) as CSV or Parquet, whole or not at all."""
    with atomic_path(path) as tmp:
        if fmt == "csv":
            result.to_csv(tmp)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            rows = result.to_records()
            pq.write_table(pa.table({c: [r.get(c) for r in rows] for c in result.columns}), tmp)


def write_outputs(result: VideoResult, plan: Plan, fmt: OutputFormat) -> None:
    """The ABAW file first, the table last: the table's presence marks the video as done."""
    if plan.abaw is not None:
        with atomic_path(plan.abaw) as tmp:
            result.to_abaw(tmp)
    write_table(result, plan.output, fmt)


def result_record(result: VideoResult, plan: Plan, out: Path, seconds: float) -> VideoRecord:
    output, abaw = plan.relative(out)
    return VideoRecord(
        plan.source,
        "ok",
        output,
        abaw,
        frames=result.frames_processed,
        faces=sum(r.has_face for r in result.rows),
        tracks=len(result.track_ids),
        seconds=round(seconds, 4),
        error=result.error,
        worker=_worker_name(),
    )


def failed_record(source: str, exc: BaseException, seconds: float) -> VideoRecord:
    return VideoRecord(
        source, "failed", seconds=round(seconds, 4), error=f"{type(exc).__name__}: {exc}", worker=_worker_name()
    )


def _worker_name() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


# ---- manifest ---------------------------------------------------------------------------------
class Manifest:
    """Appends records to ``manifest.jsonl``, one flushed and fsynced line each (a crash loses at most
    the line being written; :func:`read_manifest` skips such a torn line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "a+b")
        self._f.seek(0, os.SEEK_END)
        if self._f.tell():
            self._f.seek(-1, os.SEEK_END)
            if self._f.read(1) != b"\n":  # a line torn by a crash: end it so the next one parses
                self._f.write(b"\n")

    def append(self, record: VideoRecord) -> None:
        self._f.write((json.dumps(record.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete record of a manifest, oldest first (a torn last line is skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


@contextlib.contextmanager
def locked_output(out: Path) -> Iterator[None]:
    """Hold ``OUT/.lock`` for the batch; refuse a folder another batch is writing. Leftover temporary
    files of an interrupted run are removed once the lock is held."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a") as f:
        try:
            import fcntl

            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CfcspError(f"another batch is writing to {out}") from None
        except ImportError:  # not POSIX: no lock
            pass
        # atomic_path's temporary names (a kill -9 can leave one)
        for stale in list(out.glob(".*.partial.*")) + list(out.glob(f"{ABAW_FOLDER}/.*.partial.*")):
            stale.unlink(missing_ok=True)
        yield


# ---- threads ---------------------------------------------------------------------------------
def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def recognizer_options_with_threads(options: dict[str, Any], threads: int) -> dict[str, Any]:
    """``options`` (Recognizer keyword arguments) with intra-op threads set to ``threads`` for the
    built-in backends and detectors, unless the caller set them."""
    opts = dict(options)
    backend = opts.get("backend", "onnx")
    bopts = dict(opts.get("backend_options") or {})
    if backend == "onnx":
        bopts.setdefault("intra_op_num_threads", threads)
        bopts.setdefault("inter_op_num_threads", 1)
    elif backend == "torch":
        bopts.setdefault("num_threads", threads)
    opts["backend_options"] = bopts
    if opts.get("detector") in (None, "mtcnn", "yunet"):
        dopts = dict(opts.get("detector_options") or {})
        dopts.setdefault("threads", threads)
        opts["detector_options"] = dopts
    return opts


def skip_complete(
    plans: list[Plan], out_path: Path, manifest: Manifest, bar: BatchProgress, records: dict[int, VideoRecord]
) -> list[int]:
    """Record every plan whose outputs are already complete as skipped (manifest and progress bar) and
    return the indexes of the others, the videos still to do."""
    todo = []
    for i, plan in enumerate(plans):
        if plan.complete():
            output, abaw_rel = plan.relative(out_path)
            records[i] = VideoRecord(plan.source, "skipped", output, abaw_rel)
            manifest.append(records[i])
            bar.video(records[i])
        else:
            todo.append(i)
    return todo


def build_recognizer(model: Any, options: dict[str, Any], threads: int) -> Recognizer:
    import cv2

    from cfcsp_sdk.recognizer import Recognizer

    cv2.setNumThreads(threads)
    return Recognizer(model, **recognizer_options_with_threads(options, threads))


def prepare(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str], out: str | os.PathLike[str], fmt: str, abaw: bool
) -> tuple[Path, list[Plan]]:
    """Check arguments, expand inputs, plan outputs (no file written)."""
    if fmt not in ("csv", "parquet"):
        raise InvalidInputError(f"format must be 'csv' or 'parquet', got {fmt!r}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise CfcspError("Parquet output needs pyarrow: pip install 'cfcsp-sdk[parquet]'") from None
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    sources = expand_inputs(inputs, suffixes=VIDEO_SUFFIXES)
    out_path = Path(out).resolve()
    if out_path.exists() and not out_path.is_dir():
        raise CfcspError(f"--out {out_path} exists and is not a folder")
    return out_path, plan_outputs(sources, out_path, fmt, abaw)  # type: ignore[arg-type]


# ---- one video --------------------------------------------------------------------------------
def process_video(
    recognizer: Recognizer,
    plan: Plan,
    out: Path,
    fmt: OutputFormat,
    sampling: Sampling,
    on_frames: Callable[[int], None] = lambda n: None,
) -> VideoRecord:
    """Run one video and write its outputs; any error becomes a ``failed`` record (never raised)."""
    t0 = time.perf_counter()
    done = [0]

    def callback(frames_done: int, _total: int) -> None:
        # frames_done counts decoded frames (sampling included): report the increase
        on_frames(frames_done - done[0])
        done[0] = frames_done

    try:
        result = recognizer.predict_video(plan.source, progress=callback, **sampling.kwargs())
        write_outputs(result, plan, fmt)
    except Exception as exc:  # one bad video must not stop the corpus
        return failed_record(plan.source, exc, time.perf_counter() - t0)
    return result_record(result, plan, out, time.perf_counter() - t0)


# ---- worker processes -------------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _init_worker(model: Any, options: dict[str, Any], threads: int, queue: Any) -> None:
    # Ctrl-C reaches the workers too (one process group): each stops its video at once, its temporary
    # files removed, instead of the parent waiting for the videos in progress to end
    _worker["recognizer"] = build_recognizer(model, options, threads)
    _worker["queue"] = queue


def _work(plan: Plan, out: Path, fmt: OutputFormat, sampling: Sampling) -> VideoRecord:
    queue = _worker["queue"]
    return process_video(_worker["recognizer"], plan, out, fmt, sampling, on_frames=queue.put)


def run_batch(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    out: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    *,
    recognizer_options: dict[str, Any] | None = None,
    workers: int = 1,
    threads: int | None = None,
    format: OutputFormat = "csv",
    abaw: bool = False,
    fps: float | None = None,
    stride: int | None = 1,
    max_frames: int | None = None,
    progress: bool = True,
) -> BatchReport:
    """Label every video of ``inputs`` into ``out``; resumable (see the module docs for the layout).

    Args:
        inputs: files, folders (videos below them, sorted), globs, URLs, or list files
            (``@list.txt`` / ``list.txt``: one path or URL a line); see :func:`cfcsp_sdk.io.sources.expand_inputs`.
        out: output folder (created if needed).
        model: the model (folder, Hub repo id, ``None`` for the bundled one), as for :class:`Recognizer`.
        recognizer_options: other :class:`Recognizer` keyword arguments (``detector``, ``backend``,
            ``backend_options``, ``rule``...). Must be picklable for ``workers > 1``.
        workers: processes, each with its own Recognizer (1: this process).
        threads: intra-op threads per worker for the networks, the detector and OpenCV (default:
            cores // workers, at least 1, so workers x threads <= cores).
        format: ``"csv"`` or ``"parquet"`` (needs pyarrow: the ``parquet`` extra).
        abaw: also write ``abaw/<name>.txt``, the ABAW expression-challenge file of each video (the
            model's labels must be Aff-Wild2's).
        fps: sample frames at about this rate (as for :meth:`Recognizer.predict_video`).
        stride: or keep every ``stride``-th frame (``None``: 1). ``fps`` with a stride other than 1 is
            refused (before any video starts), as every sampling error is: see :class:`~cfcsp_sdk.sampling.Sampling`.
        max_frames: at most this many sampled frames per video.
        progress: progress bars over videos and frames on stderr.

    Returns:
        A :class:`BatchReport`; the same records were appended to ``out/manifest.jsonl`` as each video ended.

    Raises:
        MediaError: an input matches nothing.
        CfcspError: bad arguments, a model that cannot be loaded, a folder another batch is writing to.
            Errors of single videos never raise: they are recorded as ``failed`` and the batch goes on.
        KeyboardInterrupt: passed on once the manifest holds every video finished so far.
    """
    with batch_setup(
        inputs,
        out,
        model,
        recognizer_options=recognizer_options,
        workers=workers,
        threads=threads,
        default_threads=lambda w: max(1, available_cores() // w),
        format=format,
        abaw=abaw,
        sampling=Sampling(fps, 1 if stride is None else stride, max_frames),
    ) as setup:
        return _run_local(setup, workers, format, progress)


@dataclass
class BatchSetup:
    """What :func:`batch_setup` checked and made, shared by the local and the Ray runner."""

    out: Path
    plans: list[Plan]
    model: Any
    options: dict[str, Any]
    workers: int
    threads: int
    sampling: Sampling
    recognizer: Recognizer | None  # built once in this process to check the model and options
    started: float


@contextlib.contextmanager
def batch_setup(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    out: str | os.PathLike[str],
    model: Any,
    *,
    recognizer_options: dict[str, Any] | None,
    workers: int,
    threads: int | None,
    default_threads: Callable[[int], int],
    format: str,
    abaw: bool,
    sampling: Sampling,
) -> Iterator[BatchSetup]:
    """Every check a batch makes before its first video, once, for both runners: workers and threads,
    the sampling, the inputs and output plan, the model and recognizer options (a Recognizer is built
    here, so a bad model fails now and not in every worker) and, with ``abaw``, the model's labels.
    OpenCV's process-wide thread count, which building the Recognizer sets, is restored on exit."""
    import cv2

    workers = require_positive_int("workers", workers)
    threads = require_positive_int("threads", threads) if threads is not None else default_threads(workers)
    out_path, plans = prepare(inputs, out, format, abaw)
    started = time.perf_counter()
    options = dict(recognizer_options or {})
    cv2_threads = cv2.getNumThreads()
    try:
        recognizer = build_recognizer(model, options, threads)
        if abaw:
            from cfcsp_sdk.results import check_abaw_labels

            check_abaw_labels(recognizer.labels)  # before any video, not at the first ABAW file
        yield BatchSetup(out_path, plans, model, options, workers, threads, sampling, recognizer, started)
    finally:
        cv2.setNumThreads(cv2_threads)


def _run_local(setup: BatchSetup, workers: int, format: OutputFormat, progress: bool) -> BatchReport:
    out_path, plans, sampling = setup.out, setup.plans, setup.sampling
    records: dict[int, VideoRecord] = {}
    with locked_output(out_path):
        if any(p.abaw for p in plans):
            (out_path / ABAW_FOLDER).mkdir(exist_ok=True)
        manifest = Manifest(out_path / MANIFEST_NAME)
        bar = BatchProgress(progress, len(plans))
        try:
            todo = skip_complete(plans, out_path, manifest, bar, records)
            if workers == 1:
                assert setup.recognizer is not None
                for i in todo:
                    records[i] = process_video(
                        setup.recognizer, plans[i], out_path, format, sampling, on_frames=bar.frame
                    )
                    manifest.append(records[i])
                    bar.video(records[i])
            else:
                setup.recognizer = None  # each worker builds its own
                _run_pool(
                    setup.model,
                    setup.options,
                    workers,
                    setup.threads,
                    plans,
                    todo,
                    out_path,
                    format,
                    sampling,
                    manifest,
                    bar,
                    records,
                )
        finally:
            bar.close()
            manifest.close()
    return BatchReport(out_path, [records[i] for i in sorted(records)], time.perf_counter() - setup.started)


def _run_pool(
    model: Any,
    options: dict[str, Any],
    workers: int,
    threads: int,
    plans: list[Plan],
    todo: list[int],
    out: Path,
    fmt: OutputFormat,
    sampling: Sampling,
    manifest: Manifest,
    bar: BatchProgress,
    records: dict[int, VideoRecord],
) -> None:
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # no fork of a process holding ONNX Runtime / torch thread pools
    frames = ctx.Queue()

    def drain() -> None:
        with contextlib.suppress(queue_mod.Empty):
            while True:
                bar.frame(frames.get_nowait())

    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(model, options, threads, frames)
    )
    try:
        pending = {pool.submit(_work, plans[i], out, fmt, sampling): i for i in todo}
        while pending:
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            drain()
            for fut in finished:
                i = pending.pop(fut)
                try:
                    records[i] = fut.result()
                except Exception as exc:  # the worker itself died (out of memory, a crash in native code)
                    records[i] = failed_record(plans[i].source, exc, 0.0)
                manifest.append(records[i])
                bar.video(records[i])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        drain()
