"""`wala serve` against hostile requests: paths out of the results folder, other sites' pages, other host
names, a missing token, odd file names and oversized bodies each get one JSON line with no local path and
leave no job folder; SIGTERM removes the results folder as Ctrl-C does."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from wala.errors import WalaError
from wala.serve.app import FORM_MARGIN, clean_filename, create_app

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"
ADDRESS = "http://127.0.0.1:7860"  # what the test client's requests name in their Host header
BOUNDARY = "hostile-boundary"
MB = 2**20


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """An app with a 1 MB upload limit whose temporary folder's parent holds a file no request may read."""
    root = tmp_path_factory.mktemp("tmp")
    (root / "shape.obj").write_text("secret")
    patch = pytest.MonkeyPatch()
    patch.setattr(tempfile, "tempdir", str(root))
    app = create_app([FIXTURES / "sk"], max_upload_mb=1.0, device="cpu")
    patch.undo()
    yield app
    shutil.rmtree(app.state.results, ignore_errors=True)


@pytest.fixture
def client(app):
    yield TestClient(app, base_url=ADDRESS, raise_server_exceptions=False)
    assert not any(app.state.results.iterdir()), "a request left a job folder behind"


def multipart(fields: dict, files: list[tuple[bytes, bytes]], end: bool = True) -> bytes:
    """A multipart body built by hand, so that file names can hold what a browser would never send."""
    body = b""
    for key, value in fields.items():
        body += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
    for name, data in files:
        body += (
            f"--{BOUNDARY}\r\n".encode()
            + b'Content-Disposition: form-data; name="files"; filename="'
            + name
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
            + data
            + b"\r\n"
        )
    return body + (f"--{BOUNDARY}--\r\n".encode() if end else b"")


def post(client, body: bytes, **headers):
    return client.post(
        "/api/generate", content=body, headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **headers}
    )


def refusal(answer, app, status: int) -> str:
    """The one line of a refused request, checked: the status, a single "error" key, no local path."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
    for local in ("/tmp", str(app.state.results), str(app.state.results.parent), str(FIXTURES)):
        assert local not in answer.text
    return answer.json()["error"]


def test_result_paths_that_leave_the_results_folder_are_not_found(app, client):
    job = app.state.results / "0123456789ab"
    job.mkdir()
    (job / "shape.obj").write_text("v 0 0 0\n")
    assert client.get("/api/result/0123456789ab/shape.obj").text == "v 0 0 0\n"
    for url in (
        "/api/result/%2e%2e/shape.obj",
        "/api/result/%2E%2E/shape.obj",
        "/api/result/..%2f/shape.obj",
        "/api/result/%2e%2e%2f%2e%2e/shape.obj",
        "/api/result/0123456789ab/..%2f..%2fshape.obj",
        "/api/result/0123456789AB/shape.obj",
        "/api/result/0123456789ab%00/shape.obj",
        "/api/result/0123456789a/shape.obj",
        "/api/result/ba9876543210/shape.obj",
        "/static/%2e%2e%2fapp.py",
        "/static/..%2F..%2Fserve%2Fapp.py",
        "/static/%2e%2e",
        "/static/%00",
        "/static/page.js%00",
        "/static/" + "a" * 5000,
        "/static/.",
    ):
        answer = client.get(url)
        assert "secret" not in answer.text
        assert refusal(answer, app, 404) == "not found", url
    shutil.rmtree(job)


def test_a_post_from_another_sites_page_is_refused(app, client):
    body = multipart({"model": "nope"}, [])
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:7860"):
        assert refusal(post(client, body, Origin=origin), app, 403) == "requests from another site's page are refused"
    # The page's own origin, and tools that send none, get through to the form's checks.
    assert refusal(post(client, body, Origin=ADDRESS), app, 400) == "unknown model 'nope'"
    assert refusal(post(client, body), app, 400) == "unknown model 'nope'"


def test_on_loopback_a_request_naming_another_host_is_refused(app, client):
    for host in ("evil.example", "evil.example:7860", "127.0.0.1.evil.example", "192.168.1.10:7860"):
        message = refusal(client.get("/api/models", headers={"Host": host}), app, 403)
        assert message == "this server answers only to its own address (localhost)"
        refusal(post(client, multipart({"model": "sk"}, []), Host=host), app, 403)
    for host in ("localhost:7860", "127.0.0.1", "[::1]:7860"):
        assert client.get("/api/models", headers={"Host": host}).status_code == 200


def test_off_loopback_the_api_wants_the_servers_token():
    with pytest.raises(WalaError, match="needs a token"):
        create_app([FIXTURES / "sk"], host="0.0.0.0")
    app = create_app([FIXTURES / "sk"], host="0.0.0.0", token="s3cret")
    try:
        client = TestClient(app, base_url="http://192.168.1.10:7860")
        for headers in ({}, {"X-Wala-Token": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            answer = client.get("/api/models", headers=headers)
            assert refusal(answer, app, 401).startswith("this server needs its token")
        assert refusal(client.post("/api/generate"), app, 401).startswith("this server needs its token")
        assert refusal(client.get("/api/result/0123456789ab/shape.obj"), app, 401)
        for headers, query in (
            ({"Authorization": "Bearer s3cret"}, ""),
            ({"X-Wala-Token": "s3cret"}, ""),
            ({}, "?token=s3cret"),
        ):
            assert client.get(f"/api/models{query}", headers=headers).status_code == 200
        # The page and its scripts hold nothing private: they load, and the page sends the token from its URL.
        assert client.get("/?token=s3cret").status_code == client.get("/static/page.js").status_code == 200
        assert "X-Wala-Token" in client.get("/static/page.js").text
    finally:
        shutil.rmtree(app.state.results, ignore_errors=True)


def test_a_file_name_keeps_its_last_part_safe_characters_and_suffix():
    assert clean_filename("../x.npz") == "x.npz"
    assert clean_filename("..\\..\\Windows\\x.npz") == "x.npz"
    assert clean_filename("a\0b.png") == "a_b.png"
    assert clean_filename("view 3 (copy).png") == "view_3__copy_.png"
    assert clean_filename(".hidden.png") == "hidden.png"
    long = clean_filename("x" * 300 + ".png")
    assert len(long) == 100 and long.endswith("x.png")
    assert clean_filename("..") == clean_filename("/") == clean_filename("") == clean_filename("a/..") == ""


@pytest.mark.parametrize(
    "name, stored",
    [
        (b"x" * 300 + b".png", "x" * 96 + ".png"),
        (b"a\0.png", "a_.png"),
        (b"../x.png", "x.png"),
        (b"../../etc/passwd.png", "passwd.png"),
        (b"C:\\temp\\..\\x.png", "x.png"),
    ],
)
def test_an_odd_file_name_is_stored_cleaned_and_its_job_folder_goes_on_failure(app, client, name, stored):
    message = refusal(post(client, multipart({"model": "sk"}, [(name, b"not a png")])), app, 400)
    assert message.startswith(f"cannot read image {stored}:")


@pytest.mark.parametrize("name", [b"..", b"/", b"../", b"...", b"./.."])
def test_a_file_name_with_nothing_usable_is_refused(app, client, name):
    message = refusal(post(client, multipart({"model": "sk"}, [(name, b"data")])), app, 400)
    assert message == "an uploaded file needs a name (letters, digits, '.', '-', '_')"


def test_an_unnamed_file_with_bytes_is_refused_and_an_empty_file_input_is_no_file(app, client):
    message = refusal(post(client, multipart({"model": "sk"}, [(b"", b"data")])), app, 400)
    assert message.startswith("an uploaded file needs a name")
    assert refusal(post(client, multipart({"model": "sk"}, [(b"", b"")])), app, 400) == "sk reads 1 file, got 0"


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        (b"model=sk", "application/x-www-form-urlencoded", "bad upload: send a multipart/form-data form"),
        (multipart({"model": "sk"}, [(b"a.png", b"x")], end=False), None, "bad upload: the form ends before"),
        (multipart({"model": "sk"}, [(f"{i}.png".encode(), b"x") for i in range(17)]), None, "at most 16 files"),
        (multipart({"model": "sk"}, [(b"a.png", b"x"), (b"a.png", b"y")]), None, "two files named a.png"),
        (multipart({"model": "sk", "seed": "1" * 2000}, []), None, "a form field is too long"),
        (
            multipart({}, [(b"a.png", b"x")]).replace(b'name="files"', b'name="other"'),
            None,
            "files go in the form's 'files' field",
        ),
    ],
)
def test_a_malformed_form_gets_one_line(app, client, body, content_type, message):
    headers = {"Content-Type": content_type} if content_type else {}
    assert refusal(post(client, body, **headers), app, 400).startswith(message)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("seed", "-1", "seed must be in 0…2**63-1"),
        ("seed", str(2**63), "seed must be in 0…2**63-1"),
        ("seed", str(2**64), "seed must be in 0…2**63-1"),
        ("scale", "nan", "scale must be a finite number, got nan"),
        ("scale", "inf", "scale must be a finite number, got inf"),
        ("scale", "-Infinity", "scale must be a finite number, got -inf"),
    ],
)
def test_a_seed_out_of_range_or_a_non_finite_scale_is_refused_before_anything_runs(
    app, client, monkeypatch, field, value, message
):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded for a form that should have been refused")

    monkeypatch.setattr("wala.pipeline.WaLaPipeline.from_pretrained", no_model)
    image = (FIXTURES / "sk" / "input.png").read_bytes()
    body = multipart({"model": "sk", field: value}, [(b"input.png", image)])
    assert refusal(post(client, body), app, 400) == message


def test_the_largest_seed_passes_the_forms_checks(app, client):
    body = multipart({"model": "sk", "seed": str(2**63 - 1)}, [])
    assert refusal(post(client, body), app, 400) == "sk reads 1 file, got 0"  # the check after the seed's


def test_the_frameworks_own_failures_are_one_json_line(app, client):
    assert refusal(client.get("/no/such/page"), app, 404) == "not found"
    assert refusal(client.get("/api/generate"), app, 405) == "method not allowed"
    assert refusal(client.delete("/api/models"), app, 405) == "method not allowed"

    def crash():
        raise RuntimeError(f"failed in {app.state.results}/0123456789ab")

    app.add_api_route("/api/crash", crash)
    assert refusal(client.get("/api/crash"), app, 500) == "internal error: RuntimeError"


def asgi_post(app, headers: list[tuple[bytes, bytes]], chunks):
    """POST /api/generate straight to the app, the body from the iterator `chunks`: (status, body, bytes the
    app read, the results folder's largest size seen while it read)."""
    seen = {"read": 0, "peak": 0, "status": None, "body": b""}

    async def receive():
        seen["peak"] = max(seen["peak"], sum(f.stat().st_size for f in app.state.results.rglob("*") if f.is_file()))
        chunk = next(chunks, None)
        seen["read"] += len(chunk or b"")
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message):
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
        elif message["type"] == "http.response.body":
            seen["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/generate",
        "raw_path": b"/api/generate",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:7860"),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 7860),
    }
    asyncio.run(app(scope, receive, send))
    return seen["status"], seen["body"], seen["read"], seen["peak"]


def test_a_body_declared_larger_than_the_limit_is_refused_before_a_byte_is_read(app):
    chunks = iter([multipart({"model": "sk"}, [(b"big.png", bytes(5 * MB))])])
    status, body, read, _ = asgi_post(app, [(b"content-length", str(5 * MB + 300).encode())], chunks)
    assert (status, body, read) == (413, b'{"error":"uploads larger than 1 MB"}', 0)
    assert not any(app.state.results.iterdir())


def test_a_body_that_never_ends_is_cut_off_at_the_limit_and_never_written_past_it(app):
    def endless():
        yield multipart({"model": "sk"}, [(b"big.png", b"")], end=False)[:-2]  # the file part is open
        while True:
            yield bytes(64 * 1024)

    status, body, read, peak = asgi_post(app, [], endless())
    assert (status, body) == (413, b'{"error":"uploads larger than 1 MB"}')
    assert read <= 1 * MB + FORM_MARGIN + 64 * 1024 and peak <= 1 * MB
    assert not any(app.state.results.iterdir())


def test_files_past_the_limit_in_a_body_under_it_are_not_written_and_get_one_line(app):
    body = multipart({"model": "sk"}, [(b"big.png", bytes(2 * MB))])
    chunks = iter([body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024)])
    status, answer, read, peak = asgi_post(app, [(b"content-length", str(len(body)).encode())], chunks)
    # The rest of the body is read and dropped so that an HTTP client hears the answer.
    assert (status, answer, read) == (400, b'{"error":"uploads larger than 1 MB"}', len(body))
    assert peak <= 1 * MB and not any(app.state.results.iterdir())


def test_sigterm_removes_the_results_folder_and_ends_the_server_cleanly(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wala.cli",
            "serve",
            "--model",
            str(FIXTURES / "sk"),
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.communicate()
                time.sleep(0.1)
        assert len(list(tmp_path.glob("wala-serve-*"))) == 1
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0 and "Traceback" not in err, err
    assert out.startswith(f"wala: serving sk on http://127.0.0.1:{port}/")
    assert list(tmp_path.glob("wala-serve-*")) == []
