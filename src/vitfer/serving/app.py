"""``vitfer serve``: a FastAPI app with /predict, /health, /model, a WebSocket stream and a webcam page."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from pydantic import BaseModel, Field
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from vitfer.runtime.detectors import DEFAULT_DETECTOR
from vitfer.runtime.predictor import Predictor
from vitfer.runtime.tracking import FaceTracker
from vitfer.serving.limits import LOOPBACK, ServeLimits
from vitfer.web.export import STATIC as WEB_STATIC
from vitfer.runtime.sources import decode_image_bytes
from vitfer.errors import ImageTooLarge, SourceError, VitferError

STATIC = Path(__file__).parent / "static"
IMAGE_TYPES = ("image/", "application/octet-stream")


class FaceOut(BaseModel):
    """One face: its box in image pixels, the detector's score, the emotion and every class's probability."""

    box: tuple[int, int, int, int] = Field(description="x1, y1, x2, y2 in pixels of the uploaded image")
    detection_score: float
    label: str
    confidence: float
    probabilities: dict[str, float]
    face_id: int | None = None


class PredictResponse(BaseModel):
    faces: list[FaceOut]
    width: int = Field(description="width of the uploaded image in pixels")
    height: int
    inference_ms: float


class ErrorResponse(BaseModel):
    error: str
    status: int


class HealthResponse(BaseModel):
    status: str
    waiting: int = Field(description="requests waiting for an inference slot")


class ModelResponse(BaseModel):
    name: str  # the shipped model's name ('default', 'fast', 'ferplus') or the model file's
    architecture: str
    labels: list[str]
    input_size: int
    channels: int
    grayscale: bool
    backend: str
    card: dict


#: /predict reads the raw request itself (image bytes or a multipart upload), so its body is declared here
PREDICT_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "image/*": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "description": "the image, base64 (or a data: URL)"},
        "threshold": {"type": "number", "minimum": 0, "maximum": 1},
        "min_face": {"type": "integer", "minimum": 1}}}}}},
    "parameters": [
        {"name": "threshold", "in": "query", "required": False,
         "schema": {"type": "number", "minimum": 0, "maximum": 1},
         "description": "keep faces the detector scores at least this (the server's --threshold is the floor)"},
        {"name": "min_face", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
         "description": "smallest face side in pixels"}]}
ERRORS = {status: {"model": ErrorResponse, "description": what} for status, what in (
    (400, "empty upload"), (403, "a page of another origin"), (408, "upload too slow"), (413, "image too large"),
    (415, "not an image"), (422, "multipart form without a file"), (503, "server busy"))}


class ApiError(Exception):
    """A bad request, answered as JSON ``{"error": ..., "status": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: detector options a request may send (query string, form fields or JSON): name -> (type, lowest, highest)
REQUEST_OPTIONS = {"threshold": (float, 0.0, 1.0), "min_face": (int, 1, 100_000)}


def request_options(values: dict) -> dict:
    """The detector options of one request, checked: each must be a number in its range (else 422)."""
    options = {}
    for name, (kind, low, high) in REQUEST_OPTIONS.items():
        if values.get(name) in (None, ""):
            continue
        try:
            value = kind(values[name])
        except (TypeError, ValueError):
            raise ApiError(422, f"{name} must be a number, got {values[name]!r}") from None
        if not low <= value <= high:
            raise ApiError(422, f"{name} must be between {low} and {high}, got {value}")
        options[name] = value
    return options


def json_upload(body: bytes, max_bytes: int) -> tuple[bytes, dict]:
    """``{"image": "<base64, or a data: URL>", "threshold": 0.6, "min_face": 40}`` -> image bytes, options."""
    import base64
    import binascii

    try:
        payload = json.loads(body)
    except ValueError:
        raise ApiError(422, "the JSON body is not valid JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("image", payload.get("img")), str):
        raise ApiError(422, 'a JSON body needs "image": a base64 string (or a data: URL) of the image')
    text = payload.get("image", payload.get("img"))
    if text.startswith("data:"):
        text = text.partition(",")[2]
    if len(text) > max_bytes * 4 // 3 + 8:
        raise ApiError(413, f"upload exceeds the limit of {max_bytes} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, '"image" is not valid base64') from None
    return data, request_options(payload)


class ClientGone(Exception):
    """The client disconnected: nothing to compute, nothing to answer, nothing to log."""


class InferenceGate:
    """At most ``max_concurrent`` inferences; up to ``max_queue`` waiting; beyond that, refuse (503)."""

    def __init__(self, limits: ServeLimits) -> None:
        self.slots = asyncio.Semaphore(limits.max_concurrent)
        self.max_queue = limits.max_queue
        self.waiting = 0

    async def run(self, fn, *args, abandoned=None):
        """Run ``fn`` in a worker thread once a slot is free; skip it if ``abandoned()`` says the client left."""
        if self.waiting >= self.max_queue:
            raise ApiError(503, f"server busy: {self.waiting} requests already waiting; retry shortly")
        self.waiting += 1
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
        try:
            if abandoned is not None and await abandoned():
                raise ClientGone()
            return await run_in_threadpool(fn, *args)
        finally:
            self.slots.release()


def model_card(predictor: Predictor) -> dict:
    """What /model reports: name, labels, input, and the accuracy stored with the weights."""
    meta = predictor.backend.meta
    pre = predictor.preprocess
    return {"name": predictor.model_name, "architecture": meta.name, "labels": list(predictor.labels),
            "input_size": pre.img_size, "channels": pre.in_channels, "grayscale": pre.grayscale,
            "backend": predictor.backend.name, "card": meta.card}


def same_origin_or_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Browsers name the page that sends a request in ``Origin``; only this server's own page (or a listed
    origin) may drive it. Clients that are not browsers send no Origin and are not limited here."""
    if not origin:
        return True
    if origin in allowed:
        return True
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def loopback_hosts(host: str) -> list[str] | None:
    """Host names a server bound to ``host`` answers to: on loopback only its own names (no DNS rebinding)."""
    if host in LOOPBACK:
        return ["127.0.0.1", "localhost", "[::1]", "::1"]
    return None  # bound to a real interface: reachable under names we cannot know


def create_app(model: str | Path | None = None, detector: str = DEFAULT_DETECTOR, backend: str = "auto",
               limits: ServeLimits | None = None, cors_origins: list[str] | None = None,
               predictor: Predictor | None = None, detector_model: str | Path | None = None,
               allowed_hosts: list[str] | None = None, device: str | None = None, threshold: float = 0.5,
               min_face: int = 24) -> FastAPI:
    """The HTTP app. Cross-origin requests and WebSockets are refused unless ``cors_origins`` lists the origin;
    ``allowed_hosts`` (None: any) limits the ``Host`` header."""
    limits = limits or ServeLimits()
    allowed_origins = list(cors_origins or [])
    predictor = predictor or Predictor(model, detector=detector, backend=backend, detector_model=detector_model,
                                       device=device, threshold=threshold, min_face=min_face)
    gate = InferenceGate(limits)
    from vitfer.version import __version__

    app = FastAPI(title="vitfer", version=__version__, docs_url=None, redoc_url=None,
                  description="Facial expression recognition: POST an image, get faces with emotions.")
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST"])
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, err: ApiError) -> JSONResponse:
        return JSONResponse({"error": err.message, "status": err.status}, status_code=err.status)

    @app.exception_handler(ClientGone)
    async def client_gone(_request: Request, _err: ClientGone) -> Response:
        return Response(status_code=499)  # nobody reads it; no traceback in the log

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(err.detail), "status": err.status_code}, status_code=err.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: {err.errors()}", "status": 422}, status_code=422)

    def classify(data: bytes, name: str, options: dict | None = None, live: tuple | None = None) -> dict:
        """One image's faces; ``live`` (a FaceTracker and the stream's start time) keeps ids and smooths."""
        try:
            image = decode_image_bytes(data, name, limits.max_pixels)
        except ImageTooLarge as err:
            raise ApiError(413, str(err)) from None
        except SourceError as err:
            raise ApiError(415, f"{err}; send a JPEG, PNG, BMP or WebP image") from None
        height, width = image.shape[:2]
        start = time.perf_counter()
        if live is None:
            faces = predictor.predict(image, **(options or {}))
        else:
            tracker, began = live
            faces = predictor.track(image, tracker, time.monotonic() - began)
        return {"faces": [face.to_dict() for face in faces], "width": width, "height": height,
                "inference_ms": round(1000 * (time.perf_counter() - start), 2)}

    async def read_upload(request: Request) -> tuple[bytes, str, dict]:
        """The upload's bytes, its name and the detector options sent with it, read within ``limits.read_timeout``
        seconds (a slow client gets 408)."""
        try:
            return await asyncio.wait_for(read_body(request), timeout=limits.read_timeout)
        except asyncio.TimeoutError:
            raise ApiError(408, f"upload not received within {limits.read_timeout:g} s") from None
        except ClientDisconnect:
            raise ClientGone() from None

    async def read_body(request: Request) -> tuple[bytes, str, dict]:
        length = request.headers.get("content-length")
        options: dict = {}
        if length and length.isdigit() and int(length) > limits.max_upload_bytes + 4096:
            raise ApiError(413, f"upload of {int(length)} bytes exceeds the limit of {limits.max_upload_bytes}")
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            # read no more than the limit (a chunked upload declares no length), then parse what was read
            body = await bounded_body(request, limits.max_upload_bytes + 64 * 1024)
            if len(body) > limits.max_upload_bytes + 64 * 1024:
                raise ApiError(413, f"upload exceeds the limit of {limits.max_upload_bytes} bytes")

            async def replay() -> dict:
                return {"type": "http.request", "body": body, "more_body": False}

            form = await Request(request.scope, replay).form(max_files=1, max_fields=4)
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ApiError(422, f"multipart form needs an image in the field 'file' (got: {list(form.keys())})")
            data = await upload.read(limits.max_upload_bytes + 1)
            name = upload.filename or "upload"
            options = request_options({k: v for k, v in form.items() if isinstance(v, str)})
        elif content_type.startswith("application/json"):
            data, options = json_upload(await bounded_body(request), limits.max_upload_bytes)
            name = "image"
        elif content_type.startswith(IMAGE_TYPES) or not content_type:
            data = await bounded_body(request)
            name = "request body"
        else:
            raise ApiError(415, f"unsupported content type {content_type!r}; send image/* bytes or multipart 'file'")
        if len(data) > limits.max_upload_bytes:
            raise ApiError(413, f"upload exceeds the limit of {limits.max_upload_bytes} bytes")
        if not data:
            raise ApiError(400, "empty upload: send an image")
        return data, name, options

    async def bounded_body(request: Request, cap: int | None = None) -> bytes:
        """The request body, read no further than past ``cap`` bytes (default: twice the upload limit, room for
        base64); the caller's own check then answers 413."""
        cap = 2 * limits.max_upload_bytes if cap is None else cap
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > cap:
                break
        return data

    @app.post("/predict", summary="Faces, boxes, emotion labels and probabilities of one image",
              response_model=PredictResponse, responses=ERRORS, openapi_extra=PREDICT_BODY)
    async def predict(request: Request) -> dict:
        origin = request.headers.get("origin")
        if not same_origin_or_allowed(origin, request.headers.get("host"), allowed_origins):
            raise ApiError(403, f"requests from the page {origin} are refused; start the server with "
                                "--cors-origin to allow it")
        data, name, options = await read_upload(request)
        options = {**request_options(dict(request.query_params)), **options}
        return await gate.run(classify, data, name, options, abandoned=request.is_disconnected)

    @app.get("/health", response_model=HealthResponse)
    async def health() -> dict:
        return {"status": "ok", "waiting": gate.waiting}

    @app.get("/model", response_model=ModelResponse)
    async def model_info() -> dict:
        return model_card(predictor)

    @app.websocket("/ws")
    async def stream(socket: WebSocket) -> None:
        """Send binary image frames; each gets one JSON reply (faces, or an error) in order."""
        if not same_origin_or_allowed(socket.headers.get("origin"), socket.headers.get("host"), allowed_origins):
            await socket.close(code=1008)  # before the handshake: the browser sees HTTP 403
            return
        await socket.accept()
        live = (FaceTracker(), time.monotonic())  # this page's faces keep their ids, their labels are smoothed
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                if not data:
                    await socket.send_json({"error": "send each frame as binary image bytes", "status": 400})
                    continue
                if len(data) > limits.max_upload_bytes:
                    await socket.send_json({"error": "frame too large", "status": 413})
                    continue
                try:
                    await socket.send_json(await gate.run(classify, data, "frame", None, live))
                except ApiError as err:
                    await socket.send_json({"error": err.message, "status": err.status})
        except (WebSocketDisconnect, ClientGone):
            return
        except RuntimeError as err:  # a send after the client left: nothing to report
            if "close" not in str(err).lower() and "disconnect" not in str(err).lower():
                raise

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:  # Swagger UI from the package, not a CDN: the docs work offline
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="vitfer API",
                                   swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger/favicon-32x32.png")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/shared", StaticFiles(directory=WEB_STATIC), name="shared")  # the stylesheet both pages use
    browser = browser_folder(predictor)
    if browser is not None:  # the page's "run in this browser" mode: the same files as `vitfer export --web`
        app.mount("/browser", StaticFiles(directory=browser), name="browser")
    return app


def browser_folder(predictor: Predictor) -> Path | None:
    """The in-browser mode's folder for this server's model (made once into the cache), or None where it cannot
    be had: a model PyTorch runs, or ONNX Runtime Web neither cached nor downloadable (the page then offers the
    server mode alone)."""
    import hashlib
    import logging

    from vitfer.hub import ORT_WEB_VERSION, cache_root
    from vitfer.web.export import export_web

    path = getattr(predictor.backend, "path", None)
    if path is None:
        return None
    key = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    folder = cache_root() / "web" / f"{predictor.model_name}-{key}-ort{ORT_WEB_VERSION}"
    if (folder / "model.json").is_file():
        return folder
    partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    try:
        export_web(partial, path, exist_ok=True)
        os.replace(partial, folder)  # whole or not at all; a second server process may have won: fine
    except VitferError as err:
        logging.getLogger(__name__).warning("the page's in-browser mode is off: %s", err)
        return None
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return folder if (folder / "model.json").is_file() else None


SETTINGS_ENV = "VITFER_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app of one uvicorn worker process, built from the settings ``serve`` left in the environment."""
    settings = json.loads(os.environ[SETTINGS_ENV])
    settings["limits"] = ServeLimits(**settings["limits"])
    return create_app(**settings)


def serve(model: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000, detector: str = DEFAULT_DETECTOR,
          backend: str = "auto", limits: ServeLimits | None = None, cors_origins: list[str] | None = None,
          detector_model: str | Path | None = None, workers: int = 1, device: str | None = None,
          threshold: float = 0.5, min_face: int = 24) -> None:
    """Run the app with uvicorn; ``workers`` > 1 starts that many processes, each with its own model copy,
    sharing the port (each process keeps its own inference slots and queue)."""
    import uvicorn

    limits = limits or ServeLimits()
    settings = {"model": None if model is None else str(model), "detector": detector, "backend": backend,
                "limits": asdict(limits or ServeLimits()), "cors_origins": cors_origins,
                "detector_model": None if detector_model is None else str(detector_model),
                "allowed_hosts": loopback_hosts(host), "device": device, "threshold": threshold, "min_face": min_face}
    if workers > 1:
        os.environ[SETTINGS_ENV] = json.dumps(settings)
        uvicorn.run("vitfer.serving.app:app_from_environment", factory=True, workers=workers, host=host, port=port,
                    log_level="info", **protocol_settings(limits))
        return
    uvicorn.run(create_app(**{**settings, "limits": limits}), host=host, port=port, log_level="info",
                **protocol_settings(limits))


def protocol_settings(limits: ServeLimits) -> dict:
    """uvicorn's settings for the connection limits: a deadline for a request's headers, a cap on connections."""
    from vitfer.serving.protocol import TIMEOUT_ENV, HeaderDeadlineProtocol

    os.environ[TIMEOUT_ENV] = str(limits.header_timeout)  # for worker processes
    HeaderDeadlineProtocol.header_timeout = limits.header_timeout  # for this one
    return {"http": HeaderDeadlineProtocol, "limit_concurrency": limits.max_connections}
