"""Fixtures of the serve tests: a real uvicorn server on a free loopback port, started and stopped here."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install -e '.[dev]' brings it)")

from serve.live_server import start_server  # noqa: E402


@pytest.fixture(scope="session")
def recognizer_factory(tiny_repo):
    from cfcsp_sdk import Recognizer

    return lambda: Recognizer(tiny_repo, detector_options={"threads": 1})


@pytest.fixture(scope="module")
def server(recognizer_factory, tmp_path_factory):
    from cfcsp_sdk.serve import ServeSettings

    settings = ServeSettings(
        port=0,
        max_upload_bytes=64 * 1024 * 1024,
        max_connections=8,
        max_jobs=4,
        work_dir=tmp_path_factory.mktemp("serve-work"),
    )
    srv, stop = start_server(settings, recognizer_factory)
    yield srv
    stop()
