import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
import os
import shutil
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from tests.conftest import fake_camera
from fastapi.testclient import TestClient

from vitfer.serving.app import ApiError, InferenceGate, create_app, loopback_hosts
from vitfer.serving.limits import ServeLimits


@pytest.fixture(scope="module")
def client(tiny_checkpoint):
    app = create_app(tiny_checkpoint, limits=ServeLimits(max_upload_bytes=2_000_000, max_pixels=3000 * 3000))
    with TestClient(app) as test_client:
        yield test_client


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


@pytest.fixture(scope="module")
def astronaut_jpeg(astronaut):
    return astronaut.read_bytes()


def test_health_model_docs_and_page(client):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/model").json()
    assert info["name"] == "tiny" and info["architecture"] == "cnn3" and info["labels"][3] == "happy" and info["input_size"] == 48
    assert "/predict" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "getUserMedia" in client.get("/static/app.js").text


def test_docs_work_offline_and_declare_the_upload_and_answers(client):
    html = client.get("/docs").text
    assert "cdn" not in html and "https://" not in html  # every asset from this server
    for asset in ("/static/swagger/swagger-ui-bundle.js", "/static/swagger/swagger-ui.css"):
        assert asset in html and client.get(asset).status_code == 200
    spec = client.get("/openapi.json").json()
    predict = spec["paths"]["/predict"]["post"]
    upload = predict["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["properties"]["file"] == {"type": "string", "format": "binary"}  # "Try it out" can upload
    assert predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PredictResponse")
    assert predict["responses"]["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    face = spec["components"]["schemas"]["FaceOut"]["properties"]
    assert {"box", "label", "confidence", "probabilities", "detection_score"} <= set(face)


def test_predict_multipart_and_raw(client, astronaut_jpeg):
    multipart = client.post("/predict", files={"file": ("a.jpg", astronaut_jpeg, "image/jpeg")})
    assert multipart.status_code == 200
    faces = multipart.json()["faces"]
    assert len(faces) == 1 and len(faces[0]["box"]) == 4
    assert sum(faces[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    raw = client.post("/predict", content=astronaut_jpeg, headers={"content-type": "image/jpeg"})
    assert raw.json()["faces"][0]["label"] == faces[0]["label"]
    blank = client.post("/predict", content=jpeg(np.full((100, 100, 3), 200, np.uint8)),
                        headers={"content-type": "image/jpeg"})
    assert blank.status_code == 200 and blank.json()["faces"] == []


@pytest.mark.parametrize("kwargs,status,message", [
    ({"content": b"", "headers": {"content-type": "image/jpeg"}}, 400, "empty upload"),
    ({"content": b"not an image at all", "headers": {"content-type": "image/png"}}, 415, "cannot decode image"),
    ({"content": b"{}", "headers": {"content-type": "application/json"}}, 422, "needs \"image\""),
    ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "unsupported content type"),
    ({"files": {"photo": ("a.jpg", b"xx", "image/jpeg")}}, 422, "field 'file'"),
    ({"content": b"\xff" * 2_100_000, "headers": {"content-type": "image/jpeg"}}, 413, "exceeds the limit"),
])
def test_bad_requests_get_json_errors(client, kwargs, status, message):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status
    assert message in response.json()["error"] and response.json()["status"] == status


def png_header(width: int, height: int) -> bytes:
    """The first bytes of a PNG that claims ``width`` x ``height`` pixels (an image bomb needs no more to be
    recognised; a real one would carry a few MB of deflated zeros behind this)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
            + chunk(b"IEND", b""))


def test_an_image_bomb_is_refused_from_its_header_before_decoding(client, monkeypatch):
    def no_decoding(*_args, **_kwargs):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    for width in (3200, 30000, 65000):
        response = client.post("/predict", content=png_header(width, width), headers={"content-type": "image/png"})
        assert response.status_code == 413 and "over the limit" in response.json()["error"]
        assert str(width) in response.json()["error"] or "pixels" in response.json()["error"]
    cut = png_header(30000, 30000)[:33]  # signature and IHDR only: Pillow cannot follow it, its size is still read
    response = client.post("/predict", content=cut, headers={"content-type": "image/png"})
    assert response.status_code == 413 and "30000x30000" in response.json()["error"]
    with client.websocket_connect("/ws") as socket:
        socket.send_bytes(png_header(30000, 30000))
        assert socket.receive_json()["status"] == 413


def test_unknown_route_and_method(client):
    assert client.get("/etc/passwd").status_code == 404
    # dots written as %2e survive the client's URL normalisation, so the server itself meets the '..'
    traversal = client.get("/static/%2e%2e/%2e%2e/%2e%2e/pyproject.toml")
    assert b"%2e%2e" in traversal.request.url.raw_path
    assert traversal.status_code == 404 and b"[project]" not in traversal.content
    assert client.get("/predict").status_code == 405


def test_cors_off_by_default(client, tiny_checkpoint):
    headers = {"origin": "http://evil.example", "access-control-request-method": "POST"}
    assert "access-control-allow-origin" not in client.options("/predict", headers=headers).headers
    with TestClient(create_app(tiny_checkpoint, cors_origins=["http://ok.example"])) as allowed:
        response = allowed.options("/predict", headers={**headers, "origin": "http://ok.example"})
        assert response.headers["access-control-allow-origin"] == "http://ok.example"


def test_websocket_stream(client, astronaut_jpeg):
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(astronaut_jpeg)
        assert len(ws.receive_json()["faces"]) == 1
        ws.send_bytes(b"garbage")
        assert ws.receive_json()["status"] == 415
        ws.send_text("hello")
        assert ws.receive_json()["status"] == 400


def test_gate_queues_then_refuses():
    async def scenario():
        gate = InferenceGate(ServeLimits(max_concurrent=1, max_queue=1))
        release = threading.Event()
        first = asyncio.create_task(gate.run(release.wait, 5))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(gate.run(lambda: "queued"))
        await asyncio.sleep(0.05)
        with pytest.raises(ApiError, match="server busy"):
            await gate.run(lambda: "third")
        release.set()
        return await first, await second

    assert asyncio.run(scenario()) == (True, "queued")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app, limits: ServeLimits | None = None) -> Iterator[int]:
    """``app`` served by uvicorn as ``vitfer serve`` serves it, on a free loopback port in a thread; yields the
    port."""
    import uvicorn

    from vitfer.serving.app import protocol_settings

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           **protocol_settings(limits or ServeLimits())))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(5)


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(CHROMIUM is None, reason="browser test needs Debian's chromium (apt-get install chromium)")
def test_the_docs_page_renders_the_api_in_a_browser(tiny_checkpoint):
    """Swagger UI (vendored, offline) must read FastAPI's OpenAPI 3.1 document and list the endpoints."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser test needs the playwright package")
    with live_server(create_app(tiny_checkpoint, allowed_hosts=loopback_hosts("127.0.0.1"))) as port:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            outside = []
            page.on("request", lambda request: outside.append(request.url)
                    if not request.url.startswith(f"http://127.0.0.1:{port}/") else None)
            page.goto(f"http://127.0.0.1:{port}/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=20_000)
            paths = page.locator(".opblock-summary-path").all_text_contents()
            assert "/predict" in paths and "/health" in paths, paths
            assert "Unable to render" not in page.text_content("body")
            assert outside == []  # every asset from this server: the docs work offline
            browser.close()


def green_box(screenshot: bytes) -> tuple[int, int, int, int] | None:
    """The bounding box of the page's box-and-label green (#3f3) in a screenshot, or None."""
    image = cv2.imdecode(np.frombuffer(screenshot, np.uint8), cv2.IMREAD_COLOR)
    b, g, r = (image[..., i].astype(int) for i in range(3))
    ys, xs = np.nonzero((g > 200) & (r < 110) & (b < 110))
    return (xs.min(), ys.min(), xs.max(), ys.max()) if len(xs) > 50 else None


def assert_box_on_the_face(screenshot: bytes) -> None:
    """The green box drawn by the page lies on the face that a detector finds in the screenshot itself."""
    from vitfer.runtime.detectors import create_detector

    image = cv2.imdecode(np.frombuffer(screenshot, np.uint8), cv2.IMREAD_COLOR)
    faces = create_detector("yunet").detect(image)
    assert len(faces) == 1, f"{len(faces)} faces in the screenshot"
    face, drawn = faces[0], green_box(screenshot)
    assert drawn is not None, "no box drawn"
    left, _, right, bottom = drawn
    tolerance = 0.12 * face.width + 4  # the server's detection of the frame vs ours of its screenshot
    assert abs(left - face.x1) < tolerance and abs(bottom - face.y2) < tolerance, (drawn, face)
    assert left < (face.x1 + face.x2) / 2 < right


@pytest.mark.skipif(CHROMIUM is None, reason="browser test needs Debian's chromium (apt-get install chromium)")
def test_browser_page_draws_boxes_on_the_faces_at_two_widths(tmp_path, tiny_checkpoint, astronaut):
    """Headless Chromium, camera mode (a fake camera playing the astronaut photo) and photo mode, at a desktop and a
    phone width: the drawn box must sit on the face, Stop must clear it, a photo shows a latency and a face list."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser test needs the playwright package")

    video = fake_camera(astronaut, tmp_path / "camera.y4m")
    shots = os.environ.get("VITFER_ARTIFACTS", str(tmp_path))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with live_server(create_app(tiny_checkpoint, allowed_hosts=loopback_hosts("127.0.0.1"))) as port:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
                *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}"])
            for width in (1280, 390):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_function("document.body.dataset.mode !== undefined", timeout=60_000)
                if page.is_checked("#inbrowser"):
                    page.uncheck("#inbrowser")  # this test is of the server mode: frames over the WebSocket
                page.click("#start")
                page.wait_for_function("document.body.dataset.faces === '1'", timeout=30_000)
                page.wait_for_timeout(300)
                camera = page.screenshot(path=os.path.join(shots, f"browser_camera_{width}px.png"), full_page=True)
                assert_box_on_the_face(camera)
                assert page.locator("#faces li").count() == 1
                assert page.text_content("#faces li").startswith("face #1: ")  # the tracked face's own number
                page.click("#stop")
                page.wait_for_function("document.body.dataset.faces === '0'")
                assert green_box(page.screenshot(full_page=True)) is None  # no box left over a stopped camera

                page.set_input_files("#file", str(astronaut))
                page.wait_for_function("document.body.dataset.faces === '1' && !document.getElementById('photo').hidden")
                page.wait_for_timeout(200)
                photo = page.screenshot(path=os.path.join(shots, f"browser_photo_{width}px.png"), full_page=True)
                assert_box_on_the_face(photo)
                assert page.text_content("#stats").startswith("latency") and "FPS" not in page.text_content("#stats")
                listed = page.text_content("#faces")
                assert listed.startswith("face #1: ") and "{" not in page.text_content("body")  # no raw JSON
                assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen

                page.set_input_files("#file", str(broken))  # a failed upload leaves nothing of the last photo
                page.wait_for_function("document.getElementById('status').textContent.startsWith('error')")
                assert page.locator("#photo").is_hidden() and green_box(page.screenshot(full_page=True)) is None
                page.close()
            browser.close()


def test_other_web_pages_cannot_drive_the_server(tiny_checkpoint, astronaut_jpeg):
    from starlette.websockets import WebSocketDisconnect

    image = {"content": astronaut_jpeg, "headers": {"content-type": "image/jpeg"}}
    with TestClient(create_app(tiny_checkpoint, cors_origins=["http://ok.example"])) as client:
        evil = client.post("/predict", content=image["content"],
                           headers={**image["headers"], "origin": "http://evil.example"})
        assert evil.status_code == 403 and "http://evil.example" in evil.json()["error"]
        for origin in ("http://testserver", "http://ok.example", None):  # its own page, a listed page, no browser
            headers = {**image["headers"], **({"origin": origin} if origin else {})}
            assert client.post("/predict", content=image["content"], headers=headers).status_code == 200
        with pytest.raises(WebSocketDisconnect) as refused:
            with client.websocket_connect("/ws", headers={"origin": "http://evil.example"}) as socket:
                socket.receive_json()
        assert refused.value.code == 1008
        with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as socket:
            socket.send_bytes(astronaut_jpeg)
            assert "faces" in socket.receive_json()


def test_a_loopback_server_answers_only_to_its_own_names(tiny_checkpoint):
    app = create_app(tiny_checkpoint, allowed_hosts=loopback_hosts("127.0.0.1"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"host": "rebound.evil.example:8000"}).status_code == 400
    assert loopback_hosts("0.0.0.0") is None


def test_a_slow_upload_is_cut_off(tiny_checkpoint):
    """A real server on 127.0.0.1: a client that sends 1 kB of a promised 100 kB gets 408, not a held connection."""
    import uvicorn

    port = free_port()
    app = create_app(tiny_checkpoint, limits=ServeLimits(read_timeout=0.5))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                         b"Content-Length: 100000\r\n\r\n" + b"\xff" * 1000)
            start = time.perf_counter()
            reply = slow.recv(4096)
            assert reply.startswith(b"HTTP/1.1 408") and time.perf_counter() - start < 5
    finally:
        server.should_exit = True


def test_work_for_a_client_that_left_is_skipped():
    from vitfer.serving.app import ClientGone

    calls = []

    async def left() -> bool:
        return True

    async def main() -> None:
        gate = InferenceGate(ServeLimits(max_concurrent=1))
        with pytest.raises(ClientGone):
            await gate.run(calls.append, "work", abandoned=left)
        assert await gate.run(lambda: "done") == "done"  # the slot was given back

    asyncio.run(main())
    assert calls == []


def test_each_worker_process_builds_the_app_serve_describes(tiny_checkpoint, monkeypatch, astronaut_jpeg):
    """`serve --workers N` hands its settings to uvicorn's worker processes through the environment."""
    import json
    from dataclasses import asdict

    from vitfer.serving import app as serving

    calls = {}
    monkeypatch.setattr("uvicorn.run", lambda target, **kw: calls.update(target=target, **kw))
    monkeypatch.setenv(serving.SETTINGS_ENV, "")  # restored after the test
    limits = ServeLimits(max_upload_bytes=123_456, read_timeout=3.0)
    serving.serve(tiny_checkpoint, port=8123, limits=limits, workers=2, cors_origins=["http://a.example"])
    assert calls["target"] == "vitfer.serving.app:app_from_environment" and calls["workers"] == 2
    assert calls["factory"] is True and calls["port"] == 8123
    settings = json.loads(os.environ[serving.SETTINGS_ENV])
    assert settings["limits"] == asdict(limits) and settings["model"] == str(tiny_checkpoint)
    with TestClient(serving.app_from_environment(), base_url="http://127.0.0.1") as worker:  # each worker runs this
        assert worker.get("/model").json()["architecture"] == "cnn3"
        assert worker.post("/predict", content=b"x" * 200_000,
                           headers={"content-type": "image/jpeg"}).status_code == 413  # the limits came along
        assert worker.post("/predict", content=astronaut_jpeg, headers={"content-type": "image/jpeg",
                                                                        "origin": "http://a.example"}).status_code == 200


def test_predict_takes_detector_options_and_a_base64_json_body(client, astronaut_jpeg):
    import base64

    plain = client.post("/predict", content=astronaut_jpeg, headers={"content-type": "image/jpeg"}).json()
    assert len(plain["faces"]) == 1
    big_only = client.post("/predict?min_face=400", content=astronaut_jpeg, headers={"content-type": "image/jpeg"})
    assert big_only.status_code == 200 and big_only.json()["faces"] == []
    strict = client.post("/predict", files={"file": ("a.jpg", astronaut_jpeg, "image/jpeg")},
                         data={"threshold": "0.999"})
    assert strict.status_code == 200 and strict.json()["faces"] == []
    encoded = base64.b64encode(astronaut_jpeg).decode()
    for body in ({"image": encoded}, {"img": f"data:image/jpeg;base64,{encoded}"}):  # deepface's habit too
        answer = client.post("/predict", json=body)
        assert answer.status_code == 200 and answer.json()["faces"] == plain["faces"]
    assert client.post("/predict", json={"image": encoded, "min_face": 400}).json()["faces"] == []
    for body, status in (({"image": "not base64!"}, 422), ({"picture": encoded}, 422),
                         ({"image": encoded, "threshold": 3}, 422)):
        refused = client.post("/predict", json=body)
        assert refused.status_code == status and "error" in refused.json()
    assert client.post("/predict?threshold=x", content=astronaut_jpeg,
                       headers={"content-type": "image/jpeg"}).status_code == 422


def test_serve_checks_its_options_in_one_line():
    from typer.testing import CliRunner

    from vitfer.cli import app

    for option, message in ((["--port", "99999"], "--port 99999"), (["--threshold", "1.5"], "--threshold 1.5"),
                            (["--min-face", "0"], "--min-face 0"), (["--detector", "dlib"], "--detector 'dlib'")):
        result = CliRunner().invoke(app, ["serve", *option])
        assert result.exit_code == 2 and result.output.count("\n") == 1 and message in result.output, result.output


def test_the_model_endpoint_names_the_shipped_model():
    with TestClient(create_app("fast")) as client:
        info = client.get("/model").json()
    assert info["name"] == "fast" and info["architecture"] == "hybrid_vit_tiny"


def test_live_frames_keep_their_face_ids(tiny_checkpoint, astronaut_jpeg):
    with TestClient(create_app(tiny_checkpoint)) as client, client.websocket_connect("/ws") as socket:
        ids = []
        for _ in range(3):
            socket.send_bytes(astronaut_jpeg)
            ids.append([face["face_id"] for face in socket.receive_json()["faces"]])
    assert ids == [[0], [0], [0]]
    assert client.post("/predict", content=astronaut_jpeg,
                       headers={"content-type": "image/jpeg"}).json()["faces"][0]["face_id"] is None


@pytest.mark.skipif(CHROMIUM is None, reason="browser test needs Debian's chromium (apt-get install chromium)")
def test_the_page_runs_in_the_browser_by_default_and_sends_no_frame(astronaut):
    """The served page's switch "run in this browser" is on where it can be: a photo is classified in the page,
    as the server would, and nothing but static files is requested."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser test needs the playwright package")
    app = create_app("default", allowed_hosts=loopback_hosts("127.0.0.1"))
    if not any(getattr(route, "path", "") == "/browser" for route in app.routes):
        pytest.skip("ONNX Runtime Web could not be had here: the page offers the server mode alone")
    with live_server(app) as port, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        requests = []
        page.on("request", lambda request: requests.append((request.method, request.url)))
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("document.body.dataset.mode === 'browser'", timeout=60_000)
        assert page.is_checked("#inbrowser")
        page.set_input_files("#file", str(astronaut))
        page.wait_for_function("document.body.dataset.faces === '1'", timeout=30_000)
        assert page.text_content("#faces li").startswith("face #1: happy")
        browser.close()
    assert all(method == "GET" for method, _ in requests)  # no POST /predict, no WebSocket
    assert not any(url.endswith(("/predict", "/ws")) for _, url in requests)


def test_a_chunked_upload_over_the_limit_is_cut_off_at_the_limit(tiny_checkpoint):
    """No Content-Length (chunked): the server answers 413 once the limit is passed, while the client is still
    sending, instead of spooling everything first."""
    import select

    app = create_app(tiny_checkpoint, limits=ServeLimits(max_upload_bytes=2_000_000))
    with live_server(app) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: multipart/form-data; boundary=vitferboundary\r\n\r\n")
        head = (b"--vitferboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
                b"Content-Type: image/jpeg\r\n\r\n")
        conn.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        sent, answer = 0, b""
        while sent < 64 * 1024 * 1024:
            if select.select([conn], [], [], 0)[0]:
                answer = conn.recv(65536)
                break
            try:
                conn.sendall(b"10000\r\n" + b"\xff" * 65536 + b"\r\n")
            except OSError:  # the server closed the connection after answering
                break
            sent += 65536
        answer = answer or conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 * 1024 * 1024  # cut off near the 2 MB limit, not after 64 MB


def test_clients_that_stall_in_their_headers_are_cut_off(tiny_checkpoint):
    """50 clients send half a request line and stall: each is closed within the header deadline, and the server
    answers others all along."""
    import urllib.request

    limits = ServeLimits(header_timeout=1.0)
    with live_server(create_app(tiny_checkpoint, limits=limits), limits) as port:
        stalled = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
        for conn in stalled:
            conn.sendall(b"GET /health HT")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200  # served beside the stalled ones
        started = time.monotonic()
        closed = [conn.recv(10) == b"" for conn in stalled]  # the server hangs up: recv returns b""
        assert all(closed) and time.monotonic() - started < 5
        for conn in stalled:
            conn.close()
