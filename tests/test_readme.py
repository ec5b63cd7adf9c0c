"""The README's Python example runs as written (with its placeholders filled in: the bundled photo, a clip made
here; lines that need a data set stay out)."""

import re
from pathlib import Path

import cv2
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    block = re.search(r"Python:\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert block, "the README lost its Python example"
    return block.group(1)


def test_the_readme_python_example_runs(tmp_path, astronaut, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo = cv2.imread(str(astronaut))
    cv2.imwrite("photo.jpg", photo)
    cv2.imwrite("other.jpg", photo)
    writer = cv2.VideoWriter("clip.mp4", cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (photo.shape[1], photo.shape[0]))
    for _ in range(3):
        writer.write(photo)
    writer.release()
    lines = [line for line in python_example().splitlines() if "path/to" not in line]  # those need a data set
    namespace = {"bgr_array": photo, "rgb_array": photo[..., ::-1].copy(),
                 "pil_image": Image.fromarray(photo[..., ::-1].copy())}
    exec(compile("\n".join(lines), "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    assert Path("photo_annotated.jpg").is_file()
    assert namespace["faces"][0].label == "happy"
