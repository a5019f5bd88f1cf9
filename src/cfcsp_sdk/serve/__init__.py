"""``cfcsp serve``: the SDK as an HTTP and WebSocket service with a live web page (``pip install 'cfcsp-sdk[serve]'``).

:func:`create_app` builds the FastAPI app (for ASGI servers of your own); :func:`serve` runs it under
uvicorn; :class:`ServeSettings` holds the address, the token and every limit. See docs/serve.md.
"""

from cfcsp_sdk.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "serve"]


def __getattr__(name: str):
    if name in ("create_app", "serve"):  # FastAPI is imported only when the app is made
        from cfcsp_sdk.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'cfcsp_sdk.serve' has no attribute {name!r}")
