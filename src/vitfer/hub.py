"""Files fetched by name for users online (face detectors, ImageNet weights), each checked by SHA-256 and cached.

Every loader also takes a local path; a name is looked up here only when no such file exists.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from vitfer.errors import DownloadError


ORT_WEB_VERSION = "1.30.0"
ORT_WEB_TARBALL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"


@dataclass(frozen=True)
class RemoteFile:
    url: str
    sha256: str  # of the file itself (of the member, for an archive)
    member: str | None = None  # the file inside a .tgz archive


#: Files vitfer can fetch by name.
REMOTE_FILES: dict[str, RemoteFile] = {
    "face_detection_yunet.onnx": RemoteFile(
        "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
        "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"),
    "opencv_face_detector_uint8.pb": RemoteFile(
        "https://raw.githubusercontent.com/opencv/opencv_3rdparty/dnn_samples_face_detector_20180220_uint8/"
        "opencv_face_detector_uint8.pb",
        "5c71d752ef2cbf2f457ac82fdd580fcb2522fd04c5efdaed18eb6d9e2843fbed"),
    "opencv_face_detector.pbtxt": RemoteFile(
        "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/dnn/face_detector/opencv_face_detector.pbtxt",
        "5397808362fc6fb7c4044484848e297b22449d913a267fa7f8bd9d86dce29144"),
    # ImageNet MobileNetV2 (Apache-2.0, TensorFlow's hosted models): the stem of the hybrid ViTs and mobilenetv2
    "mobilenet_v2_1.0_224_quant.tflite": RemoteFile(
        "https://storage.googleapis.com/download.tensorflow.org/models/tflite_11_05_08/mobilenet_v2_1.0_224_quant.tgz",
        "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776", member="mobilenet_v2_1.0_224_quant.tflite"),
    # ONNX Runtime Web (MIT) from its npm package, for the in-browser mode (`vitfer export --web`)
    **{name: RemoteFile(ORT_WEB_TARBALL, digest, member=name) for name, digest in (
        ("ort.wasm.min.js", "faece07e84faa9001f5104bbe4e5c70861d06cb2376a0dea1fa0ad33a67adc81"),
        ("ort-wasm-simd-threaded.mjs", "e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b"),
        ("ort-wasm-simd-threaded.wasm", "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2"))},
}
#: what a download by URL gave in this process, so that several members of one archive cost one download
_downloaded: dict[str, bytes] = {}


def cache_root() -> Path:
    """vitfer's cache folder: ``$VITFER_CACHE``, else ``~/.cache/vitfer`` (downloads, ONNX exports)."""
    return Path(os.environ.get("VITFER_CACHE", "~/.cache/vitfer")).expanduser()


def cache_dir() -> Path:
    """Where files fetched by name are kept."""
    return cache_root() / "downloads"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(name: str, url: str | None = None, directory: Path | None = None) -> Path:
    """The cached file called ``name``, downloaded (and unpacked from its archive) when missing or altered."""
    if name not in REMOTE_FILES:
        raise DownloadError(f"no download known for {name!r}; known: {', '.join(sorted(REMOTE_FILES))}")
    remote = REMOTE_FILES[name]
    target = (directory or cache_dir()) / name
    if target.is_file() and sha256_of(target) == remote.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    source = url or remote.url
    try:
        if source not in _downloaded:
            with urllib.request.urlopen(source, timeout=120) as response:
                _downloaded.clear()  # one archive at a time in memory
                _downloaded[source] = response.read()
        payload = _downloaded[source]
        if remote.member is not None:
            with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
                member = next((m for m in archive.getmembers() if Path(m.name).name == remote.member), None)
                if member is None:
                    raise DownloadError(f"{source} does not hold {remote.member}")
                payload = archive.extractfile(member).read()
    except (OSError, tarfile.TarError) as err:
        raise DownloadError(f"could not download {name} from {source}: {err}") from None
    partial = target.with_name(f".{target.name}.part")
    partial.write_bytes(payload)
    if sha256_of(partial) != remote.sha256:
        partial.unlink()
        raise DownloadError(f"downloaded {name} does not match its SHA-256; refusing to use it")
    partial.replace(target)
    return target


def local_or_named(value: str | Path, what: str) -> Path:
    """An existing local file, else a file known by that name (fetched, or from the cache); ``what`` names the
    setting in the error."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if path.name == str(value) and str(value) in REMOTE_FILES:
        return fetch(str(value))
    raise DownloadError(f"{what} {value}: no such file, and not a name vitfer can download "
                        f"({', '.join(sorted(REMOTE_FILES))})")
