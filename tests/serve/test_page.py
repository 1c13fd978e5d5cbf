"""`wala serve` end to end: the page in headless Chromium uploads a condition, or takes a prompt, and shows
the mesh in its viewer; bad uploads get a one-line message, never a crash."""

import io
import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wala.serve.app import create_app

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"


@pytest.fixture(scope="module")
def server():
    import uvicorn

    models = [FIXTURES / "sk", FIXTURES / "rgb4", FIXTURES / "dm6"]
    app = create_app(models, max_upload_mb=1.0, device="cpu", text_model=FIXTURES / "text_dm6" / "model")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    app.state.jobs.stop()
    shutil.rmtree(app.state.results, ignore_errors=True)


def post(url, fields: dict, files: list[tuple[str, bytes]]):
    """A multipart POST; (status, JSON answer)."""
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for key, value in fields.items():
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files:
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    body.write(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(
        url, body.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def canvas_pixels(page) -> np.ndarray:
    """The viewer canvas's pixels (grayscale), as the page itself reads them."""
    import base64

    url = page.evaluate("document.getElementById('viewer').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("L"))


def test_the_models_are_listed_with_their_conditions_and_defaults(server):
    models = json.loads(urllib.request.urlopen(f"{server}/api/models").read())
    assert [(m["name"], m["kind"], m["files"], m["steps"], m["scale"], m["prompt"]) for m in models] == [
        ("sk", "image", 1, 5, 1.8, None),
        ("rgb4", "views", 4, 5, 1.3, "chain"),  # a text model draws any multi-view model's views
        ("dm6", "depth", 6, 10, 1.5, "chain"),
    ]


def test_bad_uploads_get_one_line_and_the_server_keeps_running(server):
    sketch = (FIXTURES / "sk" / "input.png").read_bytes()
    url = f"{server}/api/generate"
    for fields, files, message in (
        ({"model": "nope"}, [("a.png", sketch)], "unknown model 'nope'"),
        ({"model": "sk"}, [("a.txt", b"hello")], "a.txt: not a"),
        ({"model": "sk"}, [("a.png", b"not a png")], "cannot read image"),
        ({"model": "sk"}, [("a.png", sketch), ("b.png", sketch)], "sk reads 1 file, got 2"),
        ({"model": "sk", "steps": "many"}, [("a.png", sketch)], "whole numbers"),
        ({"model": "sk"}, [("big.png", bytes(2 * 2**20))], "uploads larger than 1 MB"),
        ({"model": "rgb4"}, [(f"{v}.png", sketch) for v in (3, 6, 10, 27)], "reads views 3, 6, 10, 26"),
    ):
        status, answer = post(url, fields, files)
        assert status == 400 and message in answer["error"] and "\n" not in answer["error"], (status, answer)
    status, answer = post(url, {"model": "sk", "seed": "42"}, [("drawing.png", sketch)])
    assert status == 200 and answer["faces"] > 0
    obj = urllib.request.urlopen(server + answer["obj"]).read()
    assert obj.count(b"\nf ") > 0
    assert Image.open(io.BytesIO(urllib.request.urlopen(server + answer["preview"]).read())).size == (6 * 256, 256)


def shown_mesh(page, tmp_path) -> tuple[np.ndarray, int]:
    """Once the job is done: the viewer's pixels a few frames later and its triangle count (a screenshot is
    kept in `tmp_path` to look at when a test fails)."""
    page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=120_000)
    page.wait_for_timeout(300)  # a few animation frames
    page.locator("#viewer").screenshot(path=str(tmp_path / "viewer.png"))
    return canvas_pixels(page), int(page.locator("#viewer").get_attribute("data-triangles"))


def test_the_page_uploads_a_sketch_and_its_viewer_shows_the_mesh(server, open_page, tmp_path):
    with open_page(server, 3) as page:
        blank = canvas_pixels(page)
        page.set_input_files("#files", str(FIXTURES / "sk" / "input.png"))
        page.click("#generate")
        shot, triangles = shown_mesh(page, tmp_path)
        page.set_input_files("#files", [])
        page.select_option("#model", "rgb4")
        page.set_input_files("#files", str(FIXTURES / "sk" / "input.png"))
        page.click("#generate")
        page.wait_for_function("document.getElementById('status').className === 'error'")
        error = page.text_content("#status")
    assert (blank > 250).all()  # an empty viewer is white
    assert triangles > 0 and (shot < 200).mean() > 0.01  # the mesh covers part of the canvas
    assert "reads 4 files" in error or "rgb4 reads 4 files, got 1" in error


def test_the_page_takes_a_prompt_for_a_depth_model_and_shows_the_mesh_and_the_drawn_maps(server, open_page, tmp_path):
    with open_page(server, 3) as page:
        sketch_model = page.is_visible("#text"), page.is_visible("#files")
        page.select_option("#model", "dm6")
        depth_model = page.is_visible("#text"), page.is_visible("#files"), page.is_visible("#text_steps")
        blank = canvas_pixels(page)
        page.fill("#text", "   ")  # only spaces: refused with one line
        page.click("#generate")
        page.wait_for_function("document.getElementById('status').className === 'error'")
        empty = page.text_content("#status")
        page.fill("#text", "a wooden chair")
        page.fill("#text_steps", "1")
        page.fill("#steps", "1")
        page.press("#text", "Enter")  # a prompt is sent with Enter, as a search box is
        page.wait_for_function("document.getElementById('status').textContent.startsWith('drawing views')")
        shot, triangles = shown_mesh(page, tmp_path)
        views = page.evaluate(
            "[document.getElementById('views').naturalWidth, document.getElementById('views').hidden]"
        )
        links = page.inner_text("#downloads")
    assert sketch_model == (False, True) and depth_model == (True, True, True)
    assert empty == "the text is empty"
    assert triangles > 0 and (blank > 250).all() and (shot < 200).mean() > 0.01
    assert views == [6 * 256, False] and "views" in links  # the six drawn depth maps, side by side
