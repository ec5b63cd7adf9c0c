"""The in-browser mode (``vitfer export --web``) in headless Chromium: the same answers as Python, boxes on faces
from a fake camera, and nothing but the folder's own files fetched: no image leaves the page, and it runs offline
once loaded."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import fake_camera

from vitfer.errors import ArgumentError, OutputError
from vitfer.runtime.predictor import Predictor
from vitfer.web.export import SIZE_BUDGET_MB, export_web, folder_size_mb

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def web_folder(tmp_path_factory, astronaut) -> Path:
    """The exported folder, with the photos the tests ask about beside the page (the page fetches only its own
    folder). ONNX Runtime Web comes by name from the npm registry once per cache (VITFER_ORT_WEB: a local copy)."""
    folder = tmp_path_factory.mktemp("web") / "site"
    try:
        export_web(folder, "default", ort_web=os.environ.get("VITFER_ORT_WEB"))
    except Exception as err:  # noqa: BLE001 - no registry and no local copy: nothing to test in a browser
        pytest.skip(f"ONNX Runtime Web could not be had: {err}")
    photo = cv2.imread(str(astronaut))
    (folder / "faces").mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):  # the example photo and crops of it at other sizes, colour and grey
        side = int(rng.integers(160, 512))
        top, left = int(rng.integers(0, 512 - side + 1)), int(rng.integers(0, 512 - side + 1))
        crop = photo[top:top + side, left:left + side] if i else photo
        crop = cv2.resize(crop, (int(rng.integers(200, 700)),) * 2, interpolation=cv2.INTER_AREA) if i else crop
        if i % 3 == 2:
            crop = cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        cv2.imwrite(str(folder / "faces" / f"face{i}.png"), crop)
    return folder


@contextmanager
def static_server(folder: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_the_folder_is_whole_small_and_refuses_to_overwrite(web_folder, tmp_path):
    names = {p.relative_to(web_folder).as_posix() for p in web_folder.rglob("*") if p.is_file()}
    assert {"index.html", "vitfer.js", "page.js", "model.onnx", "yunet.onnx", "model.json", "THIRD_PARTY.txt",
            "ort/ort.wasm.min.js", "ort/ort-wasm-simd-threaded.wasm"} <= names
    description = json.loads((web_folder / "model.json").read_text())
    assert description["labels"][3] == "happy" and description["preprocess"]["decode_size"] == 48
    assert folder_size_mb(web_folder) < SIZE_BUDGET_MB
    with pytest.raises(OutputError, match="holds files"):
        export_web(web_folder, "default")
    with pytest.raises(ArgumentError, match="runs ONNX files"):
        export_web(tmp_path / "other", "runs/model.pt")


@needs_chromium
def test_the_browser_gives_pythons_answers_and_sends_no_image_anywhere(web_folder):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    photos = sorted((web_folder / "faces").glob("*.png"))
    with static_server(web_folder) as origin, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        requests = []
        page.on("request", lambda request: requests.append((request.method, request.url, request.post_data)))
        page.goto(f"{origin}/index.html")
        page.wait_for_function("document.body.dataset.ready === 'default'", timeout=60_000)
        answers = {photo.name: page.evaluate("url => vitfer.predictUrl(url)", f"faces/{photo.name}")
                   for photo in photos}
        browser.close()
    predictor = Predictor("default")
    compared = 0
    for photo in photos:
        python = predictor.predict(str(photo))
        browser_faces = answers[photo.name]
        assert len(browser_faces) == len(python), photo.name
        for ours, theirs in zip(python, browser_faces):
            assert theirs["label"] == ours.label, photo.name
            assert np.abs(np.array(theirs["box"]) - np.array(ours.box)).max() <= 3
            for name, p in ours.probabilities.items():
                assert abs(theirs["probabilities"][name] - p) < 0.02, (photo.name, name)
            compared += 1
    assert compared >= 6
    assert all(url.startswith(origin + "/") for _, url, _ in requests), [u for _, u, _ in requests]
    assert all(method == "GET" and not body for method, _, body in requests)  # no image data leaves the page


@needs_chromium
def test_the_camera_page_boxes_the_face_and_works_offline_once_loaded(web_folder, astronaut, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    video = fake_camera(astronaut, tmp_path / "camera.y4m")
    with static_server(web_folder) as origin, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"])
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        page = context.new_page()
        page.goto(f"{origin}/index.html")
        page.wait_for_function("document.body.dataset.ready === 'default'", timeout=60_000)
        context.set_offline(True)  # from here on nothing could be fetched: the page must not need to
        page.click("#start")
        page.wait_for_function("document.body.dataset.faces === '1'", timeout=30_000)
        faces = json.loads(page.evaluate("document.body.dataset.result"))
        assert faces[0]["label"] == "happy" and faces[0]["face_id"] == 0
        x1, y1, x2, y2 = faces[0]["box"]
        expected = Predictor("default").predict(cv2.resize(cv2.imread(str(astronaut)), (640, 480)))[0].box
        assert max(abs(a - b) for a, b in zip((x1, y1, x2, y2), expected)) <= 4  # the box is on her face
        assert page.text_content("#faces li").startswith("face #1: happy")
        page.wait_for_function("document.getElementById('stats').textContent.startsWith('FPS')", timeout=30_000)
        page.click("#stop")
        page.set_input_files("#file", str(astronaut))  # a photo from disk, offline
        page.wait_for_function("document.body.dataset.faces === '1' && !document.getElementById('picture').hidden")
        browser.close()
