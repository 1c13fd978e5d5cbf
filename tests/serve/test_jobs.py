"""`wala serve` as a service: jobs run off the event loop, so the server answers while one runs; a bounded
queue refuses what it cannot hold (429); results are kept within a size and age; the page follows a
job's progress. A real server process on 127.0.0.1 with the built-in pc64 model (64³: seconds a job)."""

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from wala.serve.jobs import parse_keep

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "wala" / "examples" / "pointcloud" / "chair_5000.ply"
KEEP_BYTES = 3 * 2**20  # --keep 3MB,1h: a pc64 result (OBJ, GLB, preview, viewer mesh) is ~0.9 MB


def call(url: str, method: str = "GET", body: dict | None = None):
    """(status, JSON answer, seconds)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"} if data else {}, method=method)
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    seconds = time.perf_counter() - start
    return status, (json.loads(raw) if raw[:1] in (b"{", b"[") else raw), seconds


def job_body(steps: int, seed: int = 0) -> dict:
    points = base64.b64encode(EXAMPLE.read_bytes()).decode()
    return {"model": "pc64", "steps": steps, "seed": seed, "files": [{"name": EXAMPLE.name, "data": points}]}


def wait_for(url: str, job: str, states=("done", "failed", "cancelled"), timeout: float = 120.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status, state, _ = call(f"{url}/api/jobs/{job}")
        if status != 200 or state["state"] in states:
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} still {state['state']} after {timeout} s")


def memory_mib(pid: int, field: str) -> float:
    return int(Path(f"/proc/{pid}/status").read_text().split(f"{field}:")[1].split()[0]) / 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(address, process) of `wala serve` with pc64, --queue 8 --keep 3MB,1h."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import sys; from wala.serve.app import serve; "
        f"serve(['pc64'], port={port}, queue=8, keep='3MB,1h', device='cpu')"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if call(f"{url}/api/health")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise AssertionError(process.stderr.read().decode()[-2000:])
    yield url, process
    process.terminate()
    process.wait(timeout=30)


def test_keep_is_a_size_and_an_age():
    assert parse_keep("1GB,24h") == (2**30, 86400.0)
    assert parse_keep("500MB, 30m") == (500 * 2**20, 1800.0)
    for bad in ("1GB", "lots,24h", "1GB,forever", "0MB,1h"):
        with pytest.raises(Exception, match="--keep"):
            parse_keep(bad)


def test_while_a_long_job_runs_every_route_answers_within_a_second_and_it_can_be_cancelled(server):
    url, _ = server
    status, job, _ = call(f"{url}/api/jobs", "POST", job_body(steps=1000))
    assert status == 202 and job["state"] in ("queued", "running")
    state = wait_for(url, job["id"], states=("running",))
    while state["progress"]["stage"] != "sampling":  # the model is loaded; it samples
        state = call(f"{url}/api/jobs/{job['id']}")[1]
    slowest = 0.0
    routes = ["/", "/api/models", "/api/health", f"/api/jobs/{job['id']}", "/static/page.js"]
    for i in range(50):
        status, _, seconds = call(url + routes[i % len(routes)])
        assert status == 200
        slowest = max(slowest, seconds)
    running = call(f"{url}/api/jobs/{job['id']}")[1]
    assert running["state"] == "running" and running["position"] == 0
    assert 0 < running["progress"]["step"] < 1000 and running["progress"]["steps"] == 1000
    assert slowest < 1.0, slowest  # seen: a few ms
    status, _, _ = call(f"{url}/api/jobs/{job['id']}", "DELETE")
    assert status == 200
    ended = wait_for(url, job["id"], timeout=30)
    assert ended["state"] == "cancelled" and ended["result"] is None


def test_a_burst_past_the_queue_gets_429_and_results_stay_within_keep(server):
    url, process = server
    bodies = [job_body(steps=2, seed=i) for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda body: call(f"{url}/api/jobs", "POST", body), bodies))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [202] * 8 + [429] * 12, statuses
    refused = [answer for status, answer, _ in answers if status == 429]
    assert all(a["error"].startswith("the queue is full (8 jobs)") for a in refused)
    accepted = [answer["id"] for status, answer, _ in answers if status == 202]
    states = [wait_for(url, job) for job in accepted]  # done, or already evicted by newer ones (404)
    done = [s for s in states if "state" in s]
    removed = [s["error"] for s in states if "state" not in s]
    assert [s["state"] for s in done] == ["done"] * len(done)
    kept = []
    for state in done:
        links = [state["result"][k] for k in ("obj", "glb", "viewer", "preview") if state["result"][k]]
        answers = [call(url + link) for link in links]
        if all(status == 200 for status, _, _ in answers):
            kept.append(sum(len(a if isinstance(a, bytes) else json.dumps(a)) for _, a, _ in answers))
        else:
            removed.append(answers[0][1]["error"])
    assert kept and removed and len(kept) + len(removed) == 8  # ~0.9 MB results under a 3 MB limit
    assert all(e.startswith("the result of job") and "was removed: the server keeps 3 MB" in e for e in removed)
    assert sum(kept) <= KEEP_BYTES + max(kept)  # the newest is kept even past the limit
    health = call(f"{url}/api/health")[1]
    assert health["queued"] == 0 and health["running"] is None and health["capacity"] == 8
    assert memory_mib(process.pid, "VmHWM") < 1500  # MiB; seen 636 with pc64 loaded


def test_a_json_job_reports_its_stages_and_the_sync_route_still_answers(server):
    url, _ = server
    status, job, _ = call(f"{url}/api/jobs", "POST", job_body(steps=30))
    seen = set()
    while True:
        state = call(f"{url}/api/jobs/{job['id']}")[1]
        seen.add(state["progress"]["stage"])
        if state["state"] not in ("queued", "running"):
            break
        time.sleep(0.02)
    assert state["state"] == "done" and "sampling" in seen, seen
    result = state["result"]
    mesh = call(url + result["viewer"])[1]
    assert result["faces"] > 0 and len(base64.b64decode(mesh["indices"])) % 12 == 0
    status, answer, _ = call(f"{url}/api/generate", "POST", job_body(steps=2))
    assert status == 200 and answer["faces"] > 0 and answer["mesh"]["positions"]
    for body, message in (
        ({"model": "pc64", "files": "x"}, "bad request: send"),
        ({"model": "pc64", "files": [{"name": "a.ply", "data": "%%%"}]}, "a.ply: its data is not base64"),
        ({"model": "nope", "files": []}, "unknown model 'nope'"),
        ({"model": "pc64", "files": [], "seed": -1}, "seed must be in"),
    ):
        status, answer, _ = call(f"{url}/api/jobs", "POST", body)
        assert status == 400 and answer["error"].startswith(message), answer
    assert call(f"{url}/api/jobs/0123456789ab")[0] == 404


def test_the_api_is_described_by_its_openapi_schema(server):
    url, _ = server
    schema = call(f"{url}/openapi.json")[1]
    jobs = schema["paths"]["/api/jobs"]["post"]
    assert set(jobs["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert "/api/jobs/{job_id}" in schema["paths"] and "delete" in schema["paths"]["/api/jobs/{job_id}"]
    assert {"JobState", "Progress", "Result", "Model"} <= set(schema["components"]["schemas"])
    assert call(f"{url}/docs")[0] == 200


def test_the_example_client_generates_through_the_api(server, tmp_path):
    url, _ = server
    script = Path(__file__).resolve().parents[2] / "scripts" / "wala_client.py"
    done = subprocess.run(
        [sys.executable, script, url, EXAMPLE, "--model", "pc64", "--steps", "2", "-o", tmp_path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    written = Path(done.stdout.strip())
    assert written.suffix == ".glb" and written.stat().st_size > 1000
    bad = subprocess.run(
        [sys.executable, script, url, EXAMPLE, "--model", "nope"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "unknown model 'nope'" in bad.stderr


def test_the_page_shows_a_jobs_progress_and_cancels_it(server, open_page):
    url, _ = server
    with open_page(url, 1) as page:
        licence = page.text_content("#licence")
        page.set_input_files("#files", str(EXAMPLE))
        page.fill("#steps", "400")
        page.click("#generate")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('sampling step')")
        shown = page.text_content("#status")
        page.wait_for_function("document.getElementById('progress').value > 0")
        page.click("#cancel")
        page.wait_for_function("document.getElementById('status').className === 'error'", timeout=60_000)
        cancelled = page.text_content("#status")
        page.fill("#steps", "3")
        page.click("#generate")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=120_000)
        triangles = int(page.locator("#viewer").get_attribute("data-triangles"))
    assert "MIT" in licence
    assert shown.startswith("sampling step ") and shown.endswith("/400")
    assert "cancelled" in cancelled
    assert triangles > 0
