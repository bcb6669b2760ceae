"""Request bodies are limited while they are read: a body past its limit is answered 413 and the
rest of it is never kept, whether its Content-Length announced it or it arrives in chunks.
(FastAPI's own max_body_size is fixed when the app is built and answers in plain text; these
limits are settings, and the 413 is JSON like every other error.)

JSON bodies get PADDY_MAX_BODY_BYTES (1 MiB: a job spec is a few hundred bytes); the image
upload of POST /predict gets PADDY_MAX_UPLOAD_BYTES plus room for its multipart framing (the
file itself is then checked exactly by uploads.read_limited), the zip of POST /batches
PADDY_MAX_BATCH_UPLOAD_BYTES likewise.
"""

from collections.abc import Callable

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse

from services.api.settings import ApiSettings

# Room for the multipart boundaries and the other form fields of an upload.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


class BodyTooLarge(HTTPException):
    """Raised from inside `receive`: FastAPI passes an HTTPException raised while reading the
    body on as it is (any other error there would become a 400)."""

    def __init__(self, message: str):
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, message)


def body_limit(path: str, settings: ApiSettings) -> tuple[int, str]:
    """The most bytes a request to path may send, and the 413's message."""
    if path == "/predict":
        return (
            settings.max_upload_bytes + UPLOAD_OVERHEAD_BYTES,
            f"the upload is larger than {settings.max_upload_bytes} bytes (PADDY_MAX_UPLOAD_BYTES)",
        )
    if path == "/batches":
        return (
            settings.max_batch_upload_bytes + UPLOAD_OVERHEAD_BYTES,
            f"the upload is larger than {settings.max_batch_upload_bytes} bytes (PADDY_MAX_BATCH_UPLOAD_BYTES)",
        )
    return (
        settings.max_body_bytes,
        f"the request body is larger than {settings.max_body_bytes} bytes (PADDY_MAX_BODY_BYTES)",
    )


class BodySizeLimit:
    """ASGI middleware. `limit_for(path)` gives the path's limit in bytes and the 413's message."""

    def __init__(self, app, limit_for: Callable[[str], tuple[int, str]]) -> None:
        self.app, self.limit_for = app, limit_for

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, refusal = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            # Answered before reading: the server discards the body it is still sent.
            await JSONResponse(status_code=status.HTTP_413_CONTENT_TOO_LARGE, content={"detail": refusal})(
                scope, receive, send
            )
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(refusal)
            return message

        await self.app(scope, limited_receive, send)
