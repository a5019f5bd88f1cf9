"""Start a real uvicorn server on a free loopback port (for the serve tests)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class Server:
    url: str
    ws_url: str
    settings: object


def start_server(settings, factory):
    import uvicorn

    from cfcsp_sdk.serve.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, factory), log_level="warning", ws_max_size=settings.max_frame_bytes + 1024
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)

    def stop():
        server.should_exit = True
        thread.join(30)
        sock.close()

    return Server(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", settings), stop
