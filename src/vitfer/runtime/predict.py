"""The loop behind `vitfer predict`: any source -> results printed, annotated files and a CSV/JSON."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from vitfer.runtime.detectors import DEFAULT_DETECTOR
from vitfer.runtime.draw import Text, annotate, put_texts, text_size
from vitfer.runtime.rows import ResultWriter, check_output_path, check_rows_path
from vitfer.runtime.predictor import FPSMeter, Predictor
from vitfer.runtime.results import FrameResult
from vitfer.runtime.timeline import FaceTimeline
from vitfer.runtime.sources import Source, read_image
from vitfer.errors import ArgumentError, SourceError
from vitfer.files import increment_path


@dataclass
class PredictionSummary:
    """What a `vitfer predict` run did: counts, where its files went, and the inputs it could not read."""

    frames: int = 0
    faces: int = 0
    out_dir: Path | None = None
    save: Path | None = None
    errors: list[str] = field(default_factory=list)
    timelines: list[Path] = field(default_factory=list)  # videos: the per-face summary CSV, then one PNG per face
    stopped: bool = False  # ended by Ctrl-C (the normal end of a webcam run): what was done is kept whole

    def __str__(self) -> str:
        where = f"; annotated output in {self.out_dir.resolve()}" if self.out_dir is not None else ""
        saved = f"; rows in {self.save.resolve()}" if self.save else ""
        bad = f"; {len(self.errors)} problem(s), each named above" if self.errors else ""
        stopped = "stopped by Ctrl-C after " if self.stopped else ""
        return f"{stopped}{self.frames} frame(s), {self.faces} face(s){where}{saved}{bad}"


WRITABLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def annotated_path(out_dir: Path, image: str, root: Path | None) -> Path:
    """``<out>/<path relative to the source folder>/<stem>_annotated<suffix>``, in the source's own format, so
    ``face.png``, ``face.jpg`` and ``sub/face.jpg`` never overwrite each other."""
    path = Path(image)
    relative = path.relative_to(root) if root is not None and path.is_relative_to(root) else Path(path.name)
    suffix = relative.suffix.lower() if relative.suffix.lower() in WRITABLE_SUFFIXES else ".png"
    return out_dir / relative.parent / f"{relative.stem}_annotated{suffix}"


def write_annotated(drawn, out_dir: Path, image: str, root: Path | None) -> str | None:
    """An annotated image at its ``annotated_path``, folders made as needed; None, or why it could not be written
    (a full disk, a read-only folder): never announced as written when it was not."""
    target = annotated_path(out_dir, image, root)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if cv2.imwrite(str(target), drawn):
            return None
    except (OSError, cv2.error):
        pass
    return f"could not write the annotated image {target} (a full disk or a read-only folder?)"


_worker: Predictor | None = None


def _start_worker(settings: dict) -> None:
    global _worker
    _worker = Predictor(**settings, threads=1)  # N processes x 1 thread: no oversubscribed cores


def _predict_one(job: tuple) -> FrameResult:
    """One image in a worker process: its faces, its annotated copy written there; no pixels sent back."""
    path, out_dir, root, bars, on_error = job
    try:
        image = read_image(path)
    except SourceError as err:
        if on_error == "raise":
            raise
        return FrameResult(str(path), 0, 0.0, [], None, str(err))
    faces = list(_worker.predict(image))
    result = FrameResult(str(path), 0, 0.0, faces, image)
    if out_dir is not None:
        result.warning = write_annotated(annotate(image, result.faces, bars), out_dir, str(path), root)
    result.image = None
    return result


#: a folder needs this many images before worker processes pay for their start (each loads the model: ~1 s)
IMAGES_PER_EXTRA_WORKER = 64


def default_workers(source: Source, cores: int | None = None) -> int:
    """Processes for a source when none are asked for: one per core (4 at most) for a folder, glob or list of
    many photos, where each image's one face runs on one thread and the cores would idle; else 1."""
    if source.kind not in ("folder", "glob", "files"):
        return 1
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, 4, len(source.image_paths()) // IMAGES_PER_EXTRA_WORKER))


def parallel_results(source: Source, workers: int, settings: dict, out_dir: Path | None, root: Path | None,
                     bars: bool, max_frames: int | None, on_error: str):
    """FrameResults of every image of a folder or glob, computed by ``workers`` processes, in the images' order."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    paths = source.image_paths()[:max_frames]
    jobs = [(path, out_dir, root, bars, on_error) for path in paths]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                             initargs=(settings,)) as pool:
        yield from pool.map(_predict_one, jobs, chunksize=4)


GUI_OPENCV = "pip uninstall -y opencv-python-headless && pip install 'opencv-python<5'"


def live_window_problem(build_information: str | None = None, environ: dict | None = None) -> str | None:
    """Why ``--show`` cannot open a window here (None when it can): vitfer depends on OpenCV's headless build, which
    has no windows, and a window needs a display."""
    info = cv2.getBuildInformation() if build_information is None else build_information
    gui = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.strip().startswith("GUI:")), "")
    if gui.upper() in ("", "NONE"):
        return ("--show needs OpenCV with windows, and this is its headless build (vitfer's default): "
                f"{GUI_OPENCV}; or leave out --show and open the annotated output in --out")
    env = os.environ if environ is None else environ
    if sys.platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return "--show needs a display, and none is set here (DISPLAY); leave out --show and open the annotated output"
    return None


SMOOTHING = ("ema", "window", "none")
VIDEO_FORMATS = ("mp4", "webm")


@functools.cache
def h264_available() -> bool:
    """Whether this OpenCV can write H.264, tried once on a throwaway file with FFmpeg's complaints (printed
    by C code straight to stderr) kept off the user's terminal."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
                writer = cv2.VideoWriter(os.path.join(folder, "probe.mp4"), cv2.VideoWriter_fourcc(*"avc1"), 10.0,
                                         (64, 64))
                works = writer.isOpened()
                writer.release()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return works


def video_writer(stem: Path, video_format: str, fps: float, width: int, height: int):
    """An OpenCV writer for the annotated video, its path and a note for the user (or None).

    mp4: H.264 where this OpenCV can encode it (browsers play it); the pip wheels cannot (no GPL encoder), so
    MPEG-4 Part 2, which desktop players play and browsers do not: the note says so. webm: VP8, which browsers
    play, at some 20 ms of encoding per 640 x 480 frame on a laptop core.
    """
    if video_format == "webm":
        path = stem.with_suffix(".webm")
        return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (width, height)), path, None
    path = stem.with_suffix(".mp4")
    if h264_available():
        return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"avc1"), fps, (width, height)), path, None
    note = (f"note: {path.name} is MPEG-4 Part 2 (this OpenCV has no H.264 encoder): desktop players play it, "
            "browsers do not; --video-format webm writes a browser-playable WebM (VP8)")
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height)), path, note


def check_options(detector: str, backend: str, threshold: float, min_face: int, workers: int, threads: int | None,
                  smoothing: str, on_error: str, min_confidence: float, device: str | None,
                  out_dir: Path | str | None, video_format: str = "mp4") -> None:
    """Every option value of a prediction, checked before a model loads: one line naming the option."""
    from vitfer.runtime.backends import BACKENDS, parse_device
    from vitfer.runtime.detectors import DETECTORS

    problems = [
        (detector not in (*DETECTORS, "none"), f"--detector {detector!r}: use one of {', '.join(DETECTORS)} or none"),
        (backend not in BACKENDS, f"--backend {backend!r}: use one of {', '.join(BACKENDS)}"),
        (not 0.0 <= threshold <= 1.0, f"--threshold {threshold}: a detector score, between 0 and 1"),
        (min_face < 1, f"--min-face {min_face}: the smallest face side in pixels, 1 or more"),
        (workers < 1, f"--workers {workers}: 1 or more processes"),
        (threads is not None and threads < 1, f"--threads {threads}: 1 or more"),
        (smoothing not in SMOOTHING, f"--smoothing {smoothing!r}: use one of {', '.join(SMOOTHING)}"),
        (on_error not in ("skip", "raise"), f"--on-error {on_error!r}: use skip or raise"),
        (not 0.0 <= min_confidence <= 1.0, f"--min-confidence {min_confidence}: a probability, between 0 and 1"),
        (out_dir is not None and str(out_dir).strip() == "", "--out is empty: give a folder, or --no-save for rows "
                                                              "without annotated copies"),
        (video_format not in VIDEO_FORMATS, f"--video-format {video_format!r}: use mp4 or webm"),
    ]
    for wrong, message in problems:
        if wrong:
            raise ArgumentError(message)
    parse_device(device)


def run_prediction(source: str | int | Source, model: str | Path | None = "default", detector: str = DEFAULT_DETECTOR,
                   detector_model: str | Path | None = None, threshold: float = 0.5, min_face: int = 24,
                   backend: str = "auto", out_dir: Path | None = Path("runs/predict"), save: Path | None = None,
                   smoothing: str = "ema", bars: bool = False, show: bool = False, max_frames: int | None = None,
                   echo: Callable[[str], None] = print, on_error: str = "skip",
                   exist_ok: bool = False, progress: bool = False,
                   on_result: Callable[[FrameResult], None] | None = None, workers: int | None = None,
                   threads: int | None = None, device: str | None = None,
                   min_confidence: float = 0.0, video_format: str = "mp4") -> PredictionSummary:
    """Run a Predictor over a source ('example' is the bundled photo).

    ``on_error='skip'`` reads every image of a folder or glob, reports each unreadable one and lists it in the
    summary's ``errors``; 'raise' stops at the first. ``out_dir`` is taken afresh (``runs/predict2``, ...) unless
    ``exist_ok``; ``save`` never replaces an existing file unless ``exist_ok``. ``progress``: a bar with the
    total, rate and time left for folders and videos (on a terminal), the per-image lines printed above it.
    ``on_result`` is called with every frame's result (e.g. to print JSON Lines). ``workers`` > 1 classifies
    the images of a folder or glob in that many processes (one thread each); rows keep the images' order; None
    chooses (``default_workers``).
    Photos get a row each in ``save`` even without a face (its ``error`` says why).
    """
    check_options(detector, backend, threshold, min_face, 1 if workers is None else workers, threads, smoothing,
                  on_error, min_confidence, device, out_dir, video_format)
    source = Source.of(source)
    workers = default_workers(source) if workers is None else workers
    kind = source.kind
    if show and (problem := live_window_problem()):
        raise ArgumentError(problem)
    if save is not None:
        check_rows_path(save, exist_ok)  # before any work (ResultWriter checks again when it opens the file)
        if source.is_stream:  # the per-face summary goes beside the rows: it must not replace an earlier one either
            check_output_path(Path(save).with_name(f"{Path(save).stem}_summary.csv"), exist_ok)
    if out_dir is not None:
        out_dir = increment_path(out_dir, exist_ok)
    settings = {"model": model, "detector": detector, "backend": backend, "detector_model": detector_model,
                "threshold": threshold, "min_face": min_face, "device": device, "min_confidence": min_confidence}
    predictor = Predictor(**settings, threads=threads)
    root = source.root
    summary = PredictionSummary(out_dir=out_dir, save=Path(save) if save else None)
    writer = ResultWriter(save, predictor.labels, exist_ok, every_input=not source.is_stream) if save else None
    video_out = None
    meter = FPSMeter()
    complete = False
    no_face = (f"no face found (faces under {min_face} px are ignored: lower --min-face, or pass --detector none "
               "if the image is already a face crop)")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    video = source.is_stream
    source_fps, frame_count = source.video_properties() if video else (0.0, 0)
    show_bar = progress and kind != "image" and sys.stderr.isatty()  # a bar is for a person watching a terminal
    total = (frame_count if video else len(source.image_paths())) if show_bar else 0  # a folder is listed for it
    if show_bar and max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    bar = tqdm(total=total or None, unit="frame" if video else "image", disable=not show_bar,
               dynamic_ncols=True, leave=False)

    def say(line: str) -> None:
        """A line through ``echo`` (the caller picks stdout or stderr), the bar cleared around it."""
        with bar.external_write_mode():
            echo(line)
    timeline_dir = Path(save).parent if save else out_dir
    timeline = FaceTimeline(predictor.labels) if video and timeline_dir is not None else None
    parallel = workers > 1 and kind in ("folder", "glob", "files")
    results = (parallel_results(source, workers, settings,
                                out_dir, root, bars, max_frames, on_error) if parallel
               else predictor.stream(source, smoothing=smoothing, max_frames=max_frames, on_error=on_error))
    try:
        try:  # Ctrl-C between frames (drawing, writing, the live window) ends the run as well
            for result in results:
                bar.update(1)
                if result.error is not None:
                    summary.errors.append(result.error)
                    say(f"error: {result.error}")
                    if writer:
                        writer.write(result)
                    continue
                summary.frames += 1
                summary.faces += len(result.faces)
                if result.warning is not None:  # a worker's annotated copy that could not be written
                    summary.errors.append(result.warning)
                    say(f"error: {result.warning}")
                fps = meter.tick()
                if writer:
                    writer.write(result)
                if on_result is not None:
                    on_result(result)
                if timeline is not None:
                    timeline.add(result)
                if not video:
                    found = ", ".join(f"{f.label} {f.confidence:.0%}" for f in result.faces) or no_face
                    say(f"{result.source}: {found}")
                elif bar.disable and summary.frames % 30 == 0:
                    echo(f"frame {result.frame}: {len(result.faces)} face(s), {fps:.1f} FPS")
                if (out_dir is None and not show) or result.image is None:  # workers write their own annotations
                    continue
                drawn = annotate(result.image, result.faces, bars)
                if out_dir is not None:
                    if video:
                        if video_out is None:
                            stem = source.name if kind == "webcam" else f"{source.name}_annotated"
                            # the source's own frame rate and size: the annotated clip plays as long as the original
                            video_out, written, note = video_writer(out_dir / stem, video_format,
                                                                    source_fps if source_fps > 0 else 25.0,
                                                                    drawn.shape[1], drawn.shape[0])
                            if note:
                                say(note)
                            if not video_out.isOpened():
                                say(f"note: could not write the annotated video {written}; rows and timelines "
                                    "are still written")
                                video_out, out_dir = None, None
                                summary.out_dir = None  # nothing is announced that is not there
                                continue
                        video_out.write(drawn)
                    elif (problem := write_annotated(drawn, out_dir, result.source, root)) is not None:
                        summary.errors.append(problem)
                        say(f"error: {problem}")
                if show:  # the processing rate is drawn on the live window only, never into saved files
                    put_texts(drawn, [Text(8, 8, f"{fps:.1f} FPS", (0, 255, 0), text_size(drawn))])
                    cv2.imshow("vitfer", drawn)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
        except KeyboardInterrupt:  # the normal end of a webcam run: finish what was done, whole
            summary.stopped = True
            getattr(results, "close", lambda: None)()  # the source's own clean-up (a camera released)
        complete = True
        if timeline is not None:
            written = timeline.write(timeline_dir, Path(save).stem if save else source.name)
            summary.timelines = written
            if written:
                say(f"per-face timelines and summary: {written[0]} and {len(written) - 1} PNG(s) beside it")
    finally:
        if writer:
            writer.close(complete)
            if not complete:
                echo(f"stopped early: the rows so far are in {writer.partial}")
        bar.close()
        if video_out is not None:
            video_out.release()
    return summary
