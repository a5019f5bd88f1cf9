"""The FastAPI app of ``cfcsp serve``: images, video jobs, a live WebSocket stream and its web page.

Routes (all JSON; errors are ``{"error": {"type", "message"}}`` with a 4xx status):

* ``GET /``: the live page (camera -> WebSocket -> boxes, labels, a timeline per person).
* ``GET /v1/health``, ``GET /v1/model``.
* ``POST /v1/image``: an image (multipart file or the raw bytes) -> the ImageResult's ``to_dict()``.
* ``POST /v1/videos``: a video upload -> ``202`` and its job; ``GET /v1/videos/{id}``: state and
  progress; ``GET /v1/videos/{id}/result?format=json|csv|abaw``; ``DELETE /v1/videos/{id}``.
* ``WS /v1/stream``: frames in, rows out (see :mod:`cfcsp_sdk.serve.live`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from cfcsp_sdk.errors import CfcspError, InvalidInputError, MediaError
from cfcsp_sdk.io.images import header_pixels
from cfcsp_sdk.serve.jobs import RESULT_FILES, JobLimitError, VideoJobs
from cfcsp_sdk.serve.live import LiveSession, error_reply
from cfcsp_sdk.serve.settings import ServeSettings

try:
    from fastapi import FastAPI, Request, WebSocket
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect
    from starlette.websockets import WebSocketDisconnect
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("cfcsp serve needs the serve extra: pip install 'cfcsp-sdk[serve]'") from exc


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes (from its Content-Length at once,
    or while it streams in), with 413, before the app has stored more than that."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.limit
                except ValueError:
                    too_large = False
                if too_large:
                    await _send_json(send, 413, _too_large(self.limit))
                    return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, _too_large(self.limit))


def _too_large(limit: int) -> dict:
    return {"error": {"type": "PayloadTooLarge", "message": f"the request body exceeds the limit of {limit} bytes"}}


async def _send_json(send: Callable, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


_STATUS = {InvalidInputError: 400, MediaError: 415, JobLimitError: 429}


def _status_of(exc: CfcspError) -> int:
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return status
    return 400


def create_app(settings: ServeSettings | None = None, recognizer_factory: Callable[[], Any] | None = None) -> FastAPI:
    """The app. ``recognizer_factory`` makes a Recognizer (default: the bundled model); it is called
    once for the live stream and images, and once per video worker thread."""
    settings = settings or ServeSettings()
    if recognizer_factory is None:
        from cfcsp_sdk.recognizer import Recognizer

        recognizer_factory = Recognizer
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = settings.work_dir is None
        root = Path(tempfile.mkdtemp(prefix="cfcsp-serve-")) if own else Path(settings.work_dir)  # type: ignore[arg-type]
        for sub in ("jobs", "uploads"):
            # what a previous run left (a crash) is gone with it: jobs do not survive a restart
            shutil.rmtree(root / sub, ignore_errors=True)
            (root / sub).mkdir(parents=True)
        state["root"] = root
        state["recognizer"] = recognizer_factory()
        state["live"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cfcsp-live")
        state["decode"] = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cfcsp-decode")
        state["jobs"] = VideoJobs(
            root / "jobs", recognizer_factory, settings.workers, settings.max_jobs, settings.keep_finished_jobs
        )
        state["connections"] = 0
        state["lock"] = threading.Lock()
        try:
            yield
        finally:
            state["jobs"].shutdown()
            state["live"].shutdown(wait=True, cancel_futures=True)
            state["decode"].shutdown(wait=True, cancel_futures=True)
            if own:
                shutil.rmtree(root, ignore_errors=True)
            else:
                for sub in ("jobs", "uploads"):
                    shutil.rmtree(root / sub, ignore_errors=True)

    app = FastAPI(title="cfcsp-sdk", summary="Facial expression recognition with CFC-SP", lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)

    def authorized(headers: Any, query: Any) -> bool:
        if settings.token is None:
            return True
        given = query.get("token")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return given is not None and secrets.compare_digest(given.encode(), settings.token.encode())

    @app.middleware("http")
    async def check_token(request: Request, call_next: Callable) -> Any:
        public = request.url.path in ("/", "/v1/health", "/docs", "/openapi.json", "/docs/oauth2-redirect")
        if not public and not authorized(request.headers, request.query_params):
            return _error(401, "Unauthorized", "a valid 'Authorization: Bearer <token>' header is needed")
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.kind, str(exc))

    @app.exception_handler(CfcspError)
    async def cfcsp_error(request: Request, exc: CfcspError) -> JSONResponse:
        return _error(_status_of(exc), type(exc).__name__, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "HTTPError", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(
            422, "ValidationError", "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, "InternalError", f"{type(exc).__name__} (the server goes on serving)")

    # ---- pages and facts ---------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("cfcsp_sdk.serve").joinpath("static/index.html").read_text("utf-8"))

    @app.get("/v1/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model() -> dict:
        rec = state["recognizer"]
        return {
            "name": rec.config.name,
            "labels": list(rec.labels),
            "backend": rec.backend.name,
            "folder": str(rec.folder),
            "smoothing": {"window": rec.smoother.window, "mode": "causal"},
            "limits": {
                "max_frame_pixels": settings.max_frame_pixels,
                "idle_seconds": settings.idle_seconds,
                "keep_finished_jobs": settings.keep_finished_jobs,
                "max_upload_bytes": settings.max_upload_bytes,
                "max_image_pixels": settings.max_image_pixels,
                "max_frame_bytes": settings.max_frame_bytes,
                "max_waiting_frames": settings.max_waiting_frames,
                "max_connections": settings.max_connections,
                "max_jobs": settings.max_jobs,
            },
        }

    # ---- uploads -----------------------------------------------------------------------------
    async def save_upload(request: Request, folder: Path, default_name: str) -> tuple[Path, str]:
        """The request's file (multipart, first file) or raw body, written to ``folder``."""
        try:
            return await _save_upload(request, folder, default_name)
        except ClientDisconnect:
            raise ApiError(400, "ClientDisconnect", "the client went away during the upload") from None

    async def _save_upload(request: Request, folder: Path, default_name: str) -> tuple[Path, str]:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=10)
            files = [v for v in form.values() if hasattr(v, "read") and hasattr(v, "filename")]
            if not files:
                raise ApiError(400, "InvalidInputError", "the multipart form holds no file")
            upload = files[0]
            name = Path(upload.filename or default_name).name or default_name
            path = folder / f"upload{Path(name).suffix.lower()[:10]}"
            with path.open("wb") as out:
                while chunk := await upload.read(1 << 20):
                    out.write(chunk)
            await form.close()
        else:
            name = Path(request.headers.get("x-filename") or default_name).name or default_name
            path = folder / f"upload{Path(name).suffix.lower()[:10]}"
            with path.open("wb") as out:
                async for chunk in request.stream():
                    out.write(chunk)
        if path.stat().st_size == 0:
            raise ApiError(400, "InvalidInputError", "the upload is empty")
        return path, name

    @app.post("/v1/image", openapi_extra=_upload_body("image/*"))
    async def image(request: Request) -> dict:
        folder = state["root"] / "uploads" / uuid.uuid4().hex
        folder.mkdir()
        try:
            path, _ = await save_upload(request, folder, "image")
            pixels = header_pixels(path)
            if pixels is None:
                raise ApiError(415, "MediaError", "the upload is not an image (JPEG, PNG, WebP, BMP, TIFF, ...)")
            if pixels > settings.max_image_pixels:
                raise ApiError(
                    413,
                    "PayloadTooLarge",
                    f"an image of {pixels} pixels exceeds the limit of {settings.max_image_pixels} pixels",
                )
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(state["live"], state["recognizer"].predict_image, path)
            except CfcspError as exc:  # the client knows its file by its own name, not the server's path
                raise ApiError(_status_of(exc), type(exc).__name__, str(exc).replace(str(path), "the upload")) from None
            return result.to_dict()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @app.post("/v1/videos", status_code=202, openapi_extra=_upload_body("video/*"))
    async def submit_video(request: Request, fps: float | None = None, stride: int = 1) -> dict:
        from cfcsp_sdk.sampling import Sampling

        sampling = Sampling(fps=fps, stride=stride)  # checked before the upload is read, as the queue is
        jobs: VideoJobs = state["jobs"]
        jobs.check_room()  # before the upload is read: a full queue costs the client no upload
        job_id, folder = jobs.new_folder()
        try:
            path, name = await save_upload(request, folder, "video")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if not path.suffix:  # an upload without a name: the decoder probes the content, the file gets a suffix
            path = path.rename(path.with_suffix(".mp4"))
        return jobs.submit(job_id, folder, path, name, sampling.kwargs()).to_dict()

    def job_or_404(job_id: str) -> Any:
        job = state["jobs"].get(job_id)
        if job is None:
            raise ApiError(
                404,
                "NotFound",
                f"no video job {job_id!r} (deleted, removed as one of the oldest "
                "finished, or lost with a restart of the server: jobs live in memory)",
            )
        return job

    @app.get("/v1/videos/{job_id}")
    async def video_job(job_id: str) -> dict:
        return job_or_404(job_id).to_dict()

    @app.get("/v1/videos/{job_id}/result")
    async def video_result(job_id: str, format: str = "json") -> Any:
        job = job_or_404(job_id)
        if format not in RESULT_FILES:
            raise ApiError(
                400, "InvalidInputError", f"format must be one of {', '.join(RESULT_FILES)}, got {format!r:.40}"
            )
        if job.state != "done":
            raise ApiError(409, "NotReady", f"job {job_id} is {job.state}" + (f": {job.error}" if job.error else ""))
        media = {"json": "application/json", "csv": "text/csv", "abaw": "text/plain"}[format]
        stem = Path(job.filename).stem or "video"
        return FileResponse(
            state["jobs"].result_path(job, format),
            media_type=media,
            filename=f"{stem}.{ {'json': 'json', 'csv': 'csv', 'abaw': 'txt'}[format] }",
        )

    @app.delete("/v1/videos/{job_id}")
    async def delete_video(job_id: str) -> dict:
        if not state["jobs"].delete(job_id):
            job_or_404(job_id)
        return {"id": job_id, "deleted": True}

    # ---- the live stream ---------------------------------------------------------------------
    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        if not authorized(ws.headers, ws.query_params):
            await ws.close(code=1008, reason="a valid token is needed")
            return
        with state["lock"]:
            full = state["connections"] >= settings.max_connections
            if not full:
                state["connections"] += 1
        try:
            await ws.accept()
            if full:
                await ws.send_json(
                    error_reply(
                        ApiError(
                            503,
                            "TooManyConnections",
                            f"{settings.max_connections} connections are open (the limit); try again later",
                        )
                    )
                )
                await ws.close(code=1013)
                return
            await _live(ws)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away: nothing else to do
        finally:
            if not full:
                with state["lock"]:
                    state["connections"] -= 1

    async def _live(ws: WebSocket) -> None:
        session = LiveSession(
            lambda: state["recognizer"].pipeline(mode="causal"),
            state["live"],
            state["decode"],
            settings.max_waiting_frames,
            settings.max_frame_pixels,
            settings.max_frame_bytes,
        )

        async def receive() -> None:
            while not session.ended:
                try:
                    message = await asyncio.wait_for(ws.receive(), settings.idle_seconds)
                except asyncio.TimeoutError:
                    await ws.send_json(
                        error_reply(
                            ApiError(408, "IdleTimeout", f"nothing received for {settings.idle_seconds} s: closing")
                        )
                    )
                    await ws.close(code=1008)
                    raise WebSocketDisconnect(1008) from None
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                reply = (
                    session.on_bytes(message["bytes"])
                    if message.get("bytes") is not None
                    else session.on_text(message.get("text") or "")
                )
                if reply is not None:
                    await ws.send_json(reply)

        receiver = asyncio.create_task(receive())
        try:
            while True:
                work = asyncio.create_task(session.next_reply())
                done, _ = await asyncio.wait({work, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if receiver in done and receiver.exception() is not None and work not in done:
                    work.cancel()
                    raise receiver.exception()  # type: ignore[misc]
                reply = await work
                if reply is None:
                    await ws.send_json(session.end_reply())
                    await ws.close()
                    break
                await ws.send_json(reply)
        finally:
            receiver.cancel()

    return app


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def _upload_body(raw_type: str) -> dict[str, Any]:
    """The OpenAPI request body of an upload route (the route reads it itself, multipart or raw), so that
    /docs offers a file field."""
    binary = {"type": "string", "format": "binary"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": binary}, "required": ["file"]}
                },
                raw_type: {"schema": binary},
            },
        }
    }


class _RedactToken:
    """A logging filter: ``token=...`` in a logged URL becomes ``token=***``."""

    def filter(self, record: Any) -> bool:
        import re

        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = re.sub(r"token=[^&\s\"']*", "token=***", message), ()
        return True


def serve(settings: ServeSettings, recognizer_factory: Callable[[], Any] | None = None) -> None:
    """Run the app under uvicorn until interrupted."""
    import logging

    import uvicorn

    for name in ("uvicorn.error", "uvicorn.access"):  # uvicorn logs WebSocket handshakes with their query
        logging.getLogger(name).addFilter(_RedactToken())
    uvicorn.run(
        create_app(settings, recognizer_factory),
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_frame_bytes + 1024,
        log_level="info",
        access_log=settings.access_log,
    )  # off by default: the page's token travels in its URL
