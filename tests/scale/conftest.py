"""A real S3-API server (moto's server mode) on 127.0.0.1 for the object-storage tests: one process for
the session, a fresh bucket per test, and the standard AWS variables pointing every client at it (s3fs
here, and the subprocesses and Ray workers a test starts, which inherit them)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest


@pytest.fixture(scope="session")
def s3_endpoint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("the moto S3 server did not start") from None
            time.sleep(0.1)
    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        yield endpoint
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def bucket(s3_endpoint, tmp_path, monkeypatch):
    """s3://NEW-BUCKET, with this test's own local cache folder (WALA_CACHE)."""
    from wala.io import store

    name = f"wala-{uuid.uuid4().hex[:12]}"
    fs, _ = store.filesystem(f"s3://{name}")
    fs.mkdir(name)
    monkeypatch.setenv("WALA_CACHE", str(tmp_path / "cache"))
    return f"s3://{name}"
