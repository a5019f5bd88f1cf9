"""Video jobs: uploads recognised in a bounded pool of worker threads beside the request handlers.

Each worker thread has its own :class:`Recognizer` (a detector and tracker are not shared between
threads). A job's folder holds its upload and, once done, its results (JSON, CSV, ABAW); deleting a
job cancels it and removes the folder. Jobs live in memory: a restart of the server loses them.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cfcsp_sdk.errors import CfcspError

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
RESULT_FILES = {"json": "result.json", "csv": "result.csv", "abaw": "result.txt"}


class _Cancelled(Exception):
    pass


@dataclass
class VideoJob:
    """One uploaded video and what became of it (``frames_done`` of ``frames_total``, 0 if unknown)."""

    id: str
    filename: str
    folder: Path
    state: JobState = "queued"
    frames_done: int = 0
    frames_total: int = 0
    error: str | None = None
    warning: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    sampling: dict[str, Any] = field(default_factory=dict)  # fps / stride / max_frames for predict_video

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "filename": self.filename,
            "state": self.state,
            "progress": {"frames_done": self.frames_done, "frames_total": self.frames_total},
            "error": self.error,
            "warning": self.warning,
            "created": self.created,
            "finished": self.finished,
        }


class JobLimitError(CfcspError):
    """Too many jobs queued or running."""


class VideoJobs:
    """The job table and its worker pool.

    Args:
        root: folder under which each job gets its own folder.
        make_recognizer: builds one Recognizer per worker thread.
        workers: jobs run at the same time.
        max_jobs: jobs queued or running at once (:class:`JobLimitError` beyond).
        keep_finished: finished jobs kept; the oldest are removed beyond it.
    """

    def __init__(
        self, root: Path, make_recognizer: Callable[[], Any], workers: int, max_jobs: int, keep_finished: int
    ) -> None:
        self.root, self.make_recognizer = root, make_recognizer
        self.max_jobs, self.keep_finished = max_jobs, keep_finished
        self._local = threading.local()
        self._lock = threading.Lock()
        self._jobs: dict[str, VideoJob] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cfcsp-job")

    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its (created) folder, for the upload to be written into."""
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir(parents=True)
        return job_id, folder

    def check_room(self) -> None:
        """JobLimitError now if a new job would be refused (checked again by :meth:`submit`)."""
        with self._lock:
            active = sum(j.state in ("queued", "running") for j in self._jobs.values())
        if active >= self.max_jobs:
            raise JobLimitError(
                f"{active} video jobs are queued or running (the limit is {self.max_jobs}); "
                "try again when one has finished"
            )

    def submit(
        self, job_id: str, folder: Path, video: Path, filename: str, sampling: dict[str, Any] | None = None
    ) -> VideoJob:
        """Queue the uploaded ``video`` (already in ``folder``). Raises JobLimitError when full (the
        folder is removed then)."""
        with self._lock:
            active = sum(j.state in ("queued", "running") for j in self._jobs.values())
            if active >= self.max_jobs:
                shutil.rmtree(folder, ignore_errors=True)
                raise JobLimitError(
                    f"{active} video jobs are queued or running (the limit is {self.max_jobs}); "
                    "try again when one has finished"
                )
            job = VideoJob(id=job_id, filename=filename, folder=folder, sampling=dict(sampling or {}))
            self._jobs[job_id] = job
            self._prune()
        self._pool.submit(self._run, job, video)
        return job

    def get(self, job_id: str) -> VideoJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def delete(self, job_id: str) -> bool:
        """Cancel the job (a running one stops at its next chunk of frames) and remove its files."""
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is None:
            return False
        job.cancel.set()
        if job.state != "running":  # a running job removes its own folder when it stops
            shutil.rmtree(job.folder, ignore_errors=True)
        return True

    def result_path(self, job: VideoJob, fmt: str) -> Path:
        return job.folder / RESULT_FILES[fmt]

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _prune(self) -> None:
        done = sorted((j for j in self._jobs.values() if j.state in ("done", "failed")), key=lambda j: j.finished or 0)
        for job in done[: max(0, len(done) - self.keep_finished)]:
            del self._jobs[job.id]
            shutil.rmtree(job.folder, ignore_errors=True)

    def _recognizer(self) -> Any:
        rec = getattr(self._local, "recognizer", None)
        if rec is None:
            rec = self._local.recognizer = self.make_recognizer()
        return rec

    def _run(self, job: VideoJob, video: Path) -> None:
        if job.cancel.is_set():
            return
        job.state = "running"

        def progress(done: int, total: int) -> None:
            job.frames_done, job.frames_total = done, total
            if job.cancel.is_set():
                raise _Cancelled

        try:
            result = self._recognizer().predict_video(video, progress=progress, **job.sampling)
            result.source = job.filename  # the client's name for it, not the server's path
            for fmt, name in RESULT_FILES.items():
                path = job.folder / name
                if fmt == "json":
                    result.to_json(path)
                elif fmt == "csv":
                    result.to_csv(path)
                else:
                    result.to_abaw(path)
            job.warning = result.error
            job.state = "done"
        except _Cancelled:
            job.state = "cancelled"
        except CfcspError as exc:
            job.state, job.error = "failed", str(exc).replace(str(video), job.filename)
        except Exception as exc:  # noqa: BLE001 - a job's failure must not take the worker down
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}".replace(str(video), job.filename)
        finally:
            job.finished = time.time()
            video.unlink(missing_ok=True)  # the upload is not needed once the results are written
            if job.cancel.is_set():
                job.state = "cancelled"
                shutil.rmtree(job.folder, ignore_errors=True)
