"""The in-browser mode beside the server mode, in headless Chromium (WASM, a fake camera playing a face).

    python benchmarks/browser.py [--seconds 20] [--ort-web PATH] [--out benchmarks/results/browser.md]

For the page of ``vitfer export --web`` (everything in the browser) and the page of ``vitfer serve`` in its
server mode (frames over a WebSocket to a server on this machine): frames per second of the live camera loop and
milliseconds per frame (one face), over ``--seconds``; and the in-browser milliseconds to classify the example
photo (detection + one face), median of 20. Prints a Markdown table with the exported folder's size against its
budget. Both modes share this machine's cores with the browser, as they would on one laptop.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from timing import publish  # benchmarks/timing.py

import cv2

from vitfer.shipped import EXAMPLE_IMAGE
from vitfer.web.export import SIZE_BUDGET_MB, export_web, folder_size_mb

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def fake_camera(folder: Path) -> Path:
    frame = cv2.resize(cv2.imread(str(EXAMPLE_IMAGE)), (640, 480))
    video = folder / "camera.y4m"
    yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(video, "wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        for _ in range(60):
            out.write(b"FRAME\n" + yuv)
    return video


def camera_rate(page, seconds: float) -> tuple[float, float]:
    """(frames per second, ms per frame) of the page's live loop, counted from its face updates."""
    page.click("#start")
    page.wait_for_function("document.body.dataset.faces === '1'", timeout=60_000)
    page.evaluate("""() => { window.__frames = 0;
        new MutationObserver(() => window.__frames++).observe(document.getElementById('faces'),
                                                             {childList: true}); }""")
    time.sleep(seconds)
    frames = page.evaluate("window.__frames")
    page.click("#stop")
    fps = frames / seconds
    return fps, 1000 / fps if fps else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ort-web", default=os.environ.get("VITFER_ORT_WEB"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    import uvicorn

    from vitfer.serving.app import create_app, loopback_hosts

    work = Path(tempfile.mkdtemp(prefix="vitfer-browser-"))
    site = export_web(work / "site", "default", ort_web=args.ort_web)
    shutil.copy(EXAMPLE_IMAGE, site / "example.jpg")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=static.serve_forever, daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(create_app("default", allowed_hosts=loopback_hosts("127.0.0.1")),
                                           host="127.0.0.1", port=0, log_level="warning"))
    server.config.port = static.server_address[1] + 1
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    rows = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={fake_camera(work)}"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{static.server_address[1]}/index.html")
            page.wait_for_function("document.body.dataset.ready === 'default'", timeout=120_000)
            page.evaluate("vitfer.predictUrl('example.jpg')")  # warm-up
            photo = [page.evaluate("async () => { const t = performance.now(); await vitfer.predictUrl('example.jpg');"
                                   " return performance.now() - t; }") for _ in range(20)]
            fps, ms = camera_rate(page, args.seconds)
            rows.append(("in the browser (ONNX Runtime Web, WASM)", fps, ms, statistics.median(photo)))
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.config.port}/")
            page.wait_for_function("document.body.dataset.mode !== undefined", timeout=120_000)
            if page.is_checked("#inbrowser"):
                page.uncheck("#inbrowser")
            fps, ms = camera_rate(page, args.seconds)
            rows.append(("server mode (WebSocket to vitfer serve on this machine)", fps, ms, float("nan")))
            browser.close()
    finally:
        server.should_exit = True
        static.shutdown()
    size = folder_size_mb(site)
    shutil.rmtree(work, ignore_errors=True)
    lines = ["| mode | camera FPS (640x480, one face) | ms per frame | example photo, ms (detect + 1 face) |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {fps:.1f} | {ms:.1f} | {'—' if photo != photo else f'{photo:.1f}'} |"
              for name, fps, ms, photo in rows]
    text = (f"{os.cpu_count()} cores, Chromium headless; `python benchmarks/browser.py --seconds {args.seconds:g}`\n\n"
            + "\n".join(lines) + f"\n\nExported folder: {size:.1f} MB (budget {SIZE_BUDGET_MB} MB).\n")
    publish(text, args.out)


if __name__ == "__main__":
    main()
