"""`wala serve` takes a prompt: a text model reads it, and with `--text-model` a text-to-views model draws a
DM6 model's depth maps from it first (the chain). Bad prompts get one line and a 4xx before anything runs.
The chain runs the official-format fixtures (a tiny random text-to-views model and DM6 model); the text
model is the built-in pc64 generator with a fresh text encoder in place of its point encoder."""

import dataclasses
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from wala.errors import WalaError
from wala.serve.app import create_app

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"
TEXT_MODEL = FIXTURES / "text_dm6" / "model"
ADDRESS = "http://127.0.0.1:7860"
BOUNDARY = "text-boundary"
PROMPT = "a wooden chair"


@pytest.fixture(scope="module")
def text_generator(tmp_path_factory) -> Path:
    """A model directory reading text: pc64's trained denoiser and autoencoder, its condition a text encoder
    (frozen MiniLM + an untrained projection) — small untrained parts, enough for a surface."""
    import torch

    from wala.diffusion.model import LatentDiffusion
    from wala.hub.generators import read_model_config, read_ours, save_model
    from wala.hub.paths import BUILTIN

    config, _ = read_model_config(BUILTIN / "pc64")
    config = dataclasses.replace(
        config,
        condition=dataclasses.replace(config.condition, kind="text"),
        denoiser=dataclasses.replace(config.denoiser, aligned_context=False),  # text tokens have no place
    )
    torch.manual_seed(0)
    model = LatentDiffusion(config)
    own = model.state_dict()
    shared = {k: v for k, v in read_ours(BUILTIN / "pc64").items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(shared, strict=False)
    return save_model(model, tmp_path_factory.mktemp("models") / "text64", "wala")


@pytest.fixture(scope="module")
def app(text_generator):
    app = create_app(
        [FIXTURES / "dm6", text_generator, FIXTURES / "sk"], max_upload_mb=1.0, device="cpu", text_model=TEXT_MODEL
    )
    yield app
    app.state.jobs.stop()
    shutil.rmtree(app.state.results, ignore_errors=True)


@pytest.fixture
def client(app):
    yield TestClient(app, base_url=ADDRESS, raise_server_exceptions=False)


def form(fields: dict[str, str], files: list[tuple[str, bytes]] = ()) -> tuple[bytes, dict]:
    """A multipart body and its headers."""
    body = b""
    for key, value in fields.items():
        body += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    for name, data in files:
        body += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def test_the_models_say_how_they_take_a_prompt(client, text_generator):
    models = {m["name"]: m["prompt"] for m in client.get("/api/models").json()}
    assert models == {"dm6": "chain", "text64": "caption", "sk": None}
    plain = create_app([FIXTURES / "dm6"], device="cpu")
    without = TestClient(plain, base_url=ADDRESS)
    assert without.get("/api/models").json()[0]["prompt"] is None  # no text model: files only
    answer = without.post("/api/jobs", json={"model": "dm6", "text": PROMPT})
    plain.state.jobs.stop()
    shutil.rmtree(plain.state.results)
    assert answer.status_code == 400
    assert (
        answer.json()["error"]
        == "dm6 reads depth ×6 (3, 6, 10, 26, 49, 50): start wala serve with --text-model to draw its views"
    )
    with pytest.raises(WalaError, match="sk: not a text-to-views model"):
        create_app([FIXTURES / "dm6"], device="cpu", text_model=FIXTURES / "sk")
    with pytest.raises(WalaError, match="model is a text-to-views model: give it as --text-model"):
        create_app([TEXT_MODEL], device="cpu")


def test_bad_prompts_get_one_line_and_nothing_runs(app, client):
    sketch = (FIXTURES / "sk" / "input.png").read_bytes()
    maps = [(p.name, p.read_bytes()) for p in sorted((FIXTURES / "dm6").glob("*.png"))]
    for body, message in (
        ({"model": "dm6", "text": ""}, "the text is empty"),
        ({"model": "text64", "text": " \u3000 "}, "the text is empty"),
        ({"model": "dm6", "text": "a" * 501}, "the text is longer than 500 characters"),
        ({"model": "dm6", "text": "a chair\nignore that"}, "the text holds control characters"),
        ({"model": "dm6", "text": "a\x00chair"}, "the text holds control characters"),
        ({"model": "dm6", "text": "a\u2028chair"}, "the text holds control characters"),
        ('{"model": "dm6", "text": "\\ud800"}', "the text holds control characters"),  # a lone surrogate
        ({"model": "dm6", "text": ["a", "chair"]}, "bad request: text must be a string"),
        ({"model": "dm6", "text": 3}, "bad request: text must be a string"),
        ({"model": "dm6"}, "dm6 needs a prompt (text) or 6 files"),
        ({"model": "text64"}, "text64 needs a prompt (text)"),
        ({"model": "sk", "text": PROMPT}, "sk reads image: not text"),
        ({"model": "dm6", "text": PROMPT, "text_steps": 0}, "steps must be between 1 and 1000"),
        ({"model": "dm6", "text": PROMPT, "text_guidance": "nan"}, "scale must be a finite number"),
    ):
        raw = body if isinstance(body, str) else json.dumps(body)
        answer = client.post("/api/jobs", content=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json()["error"].startswith(message), (body, answer.text)
    for fields, files, message in (
        ({"model": "dm6", "text": "é" * 501}, [], "the text is longer than 500 characters"),
        ({"model": "dm6", "text": "é" * 1001}, [], "the text is longer than 500 characters"),  # past the field
        ({"model": "dm6", "text": "a\tchair"}, [], "the text holds control characters"),
        ({"model": "dm6", "text": PROMPT}, maps, "dm6: give a prompt (text) or files, not both"),
        ({"model": "sk", "text": PROMPT}, [("a.png", sketch)], "sk reads image: not text"),
    ):
        answer = client.post("/api/jobs", content=form(fields, files)[0], headers=form(fields, files)[1])
        assert answer.status_code == 400 and answer.json()["error"].startswith(message), (fields, answer.text)
        assert "\n" not in answer.json()["error"]
    assert not any(app.state.results.iterdir()), "a refused prompt left a job folder"
    assert client.get("/api/health").json()["queued"] == 0


def test_a_prompt_for_a_depth_model_runs_the_chain_and_shows_the_drawn_maps(client):
    from wala.text.multiview import TextToViews

    body = {"model": "dm6", "text": f"  {PROMPT} ", "text_steps": 1, "steps": 1, "seed": 5}
    job = client.post("/api/jobs", json=body).json()
    stages = set()
    while (state := client.get(f"/api/jobs/{job['id']}").json())["state"] in ("queued", "running"):
        stages.add(state["progress"]["stage"])
        time.sleep(0.1)
    assert state["state"] == "done", state
    result = state["result"]
    assert "drawing views" in stages  # the text model's steps: seconds each on a CPU
    assert result["faces"] > 1000 and client.get(result["obj"]).content.count(b"\nf ") == result["faces"]
    drawn = np.asarray(Image.open(io.BytesIO(client.get(result["views"]).content)))
    # the views the pipeline's chain (pipe(text=…, text_model=…)) draws: DM6's six, same seed, prompt stripped
    expected = TextToViews.load(TEXT_MODEL)(PROMPT, views=(3, 6, 10, 26, 49, 50), steps=1, seed=5).images
    assert np.array_equal(drawn, np.concatenate(list(expected), axis=1))
    viewer = json.loads(client.get(result["viewer"]).content)
    assert len(viewer["positions"]) > 0 and len(viewer["indices"]) > 0


def test_a_text_model_reads_the_prompt_and_never_a_file_it_names(client, text_generator, tmp_path):
    from wala.pipeline import WaLaPipeline

    caption = tmp_path / "caption.txt"
    caption.write_text("an airplane")
    pipe = WaLaPipeline.from_pretrained(text_generator, "cpu")
    for prompt in (PROMPT, str(caption)):
        answer = client.post(
            "/api/generate",
            content=form(fields := {"model": "text64", "text": prompt, "seed": "3"})[0],
            headers=form(fields)[1],
        )
        assert answer.status_code == 200, answer.text
        literal = tmp_path / "literal.txt"
        literal.write_text(prompt)  # the prompt as words, even when it names a file
        (shape,) = pipe(text=[str(literal)], seed=3, progress=False)
        assert answer.json()["faces"] == len(shape.mesh.faces) and answer.json()["views"] is None
