"""A Hugging Face hub on 127.0.0.1 for the download tests, serving repos the way the hub does for
huggingface_hub's `snapshot_download`:

- `GET /api/models/{owner}/{name}[/revision/{rev}]`: the model info, `sha` = the commit the revision names;
- `GET /api/models/{owner}/{name}/tree/{rev}[/{path}]`: the file listing (git blob oid, size, LFS sha256);
- `HEAD|GET /{owner}/{name}/resolve/{rev}/{file}`: the file, with `X-Repo-Commit`, `ETag` (the LFS
  sha256 for LFS files, the git blob oid for others), `Content-Length`, `Accept-Ranges`, and 206 partial
  answers to `Range: bytes=N-`.

An unknown repo, revision or file is a 404 with the hub's `X-Error-Code` (RepoNotFound, RevisionNotFound,
EntryNotFound). `cut` names files whose next full GET stops halfway and closes the connection; with
`down_after_cut` every later GET of that file is a 503, so the download fails. Every request is logged.
(`GET /api/agent-harnesses`, the library's best-effort user-agent registry, is an empty one.)
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"
LFS = (".ckpt", ".safetensors")  # stored in LFS, as on the hub: their ETag is the sha256


@pytest.fixture(scope="session")
def pc_model() -> Path:
    """The shared tiny official-format point-cloud model (args.json + checkpoint.ckpt, and its input.h5df)."""
    folder = FIXTURES / "pc"
    if not (folder / "checkpoint.ckpt").is_file():
        raise RuntimeError(f"official fixtures missing under {folder} (shared/fixtures/official)")
    return folder


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    authorization: str | None


@dataclass
class LocalHub:
    """What the local hub serves (repos, tags), what it was asked (`log`) and how it fails (`cut`)."""

    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)  # repo id → {path: bytes}
    tags: dict[str, str] = field(default_factory=dict)  # tag → repo id it exists in (besides main and the commit)
    log: list[Request] = field(default_factory=list)
    cut: set[str] = field(default_factory=set)  # "repo/path" whose next full GET is cut halfway
    was_cut: set[str] = field(default_factory=set)
    down_after_cut: bool = False
    url: str = ""
    server: ThreadingHTTPServer | None = None

    def stop(self):
        """Stops serving: the port then refuses connections."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def add(self, repo_id: str, folder: Path, files=("args.json", "checkpoint.ckpt"), extra=None) -> str:
        """Serves `files` of `folder` (and `extra`: path → bytes) as `repo_id`. → its commit."""
        self.repos[repo_id] = {f: (folder / f).read_bytes() for f in files} | (extra or {})
        return self.commit(repo_id)

    def commit(self, repo_id: str) -> str:
        """The one commit of a repo, from its contents (main names it)."""
        files = self.repos[repo_id]
        return hashlib.sha1(json.dumps({k: git_oid(v) for k, v in sorted(files.items())}).encode()).hexdigest()

    def gets(self, name: str) -> list[Request]:
        """The GETs of a file (by its path in the repo)."""
        return [r for r in self.log if r.method == "GET" and "/resolve/" in r.path and r.path.endswith("/" + name)]


class Handler(BaseHTTPRequestHandler):
    hub: LocalHub

    def log_message(self, *args):  # quiet
        pass

    def do_HEAD(self):
        self.answer(head=True)

    def do_GET(self):
        self.answer(head=False)

    def answer(self, head: bool):
        hub = self.hub
        path = urlsplit(self.path).path
        hub.log.append(Request(self.command, path, self.headers.get("Range"), self.headers.get("Authorization")))
        if path == "/api/agent-harnesses":  # the library's user-agent registry (best effort, once a day)
            self.json({"standardEnvVars": [], "harnesses": {}})
        elif m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
            repo_id, rev = m[1], unquote(m[2] or "main")
            if self.check(repo_id, rev):
                files = hub.repos[repo_id]
                body = {"id": repo_id, "sha": hub.commit(repo_id), "private": False}
                self.json(body | {"siblings": [{"rfilename": f} for f in files]})
        elif m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path):
            repo_id, rev, under = m[1], unquote(m[2]), unquote(m[3] or "")
            if self.check(repo_id, rev):
                self.json([self.entry(p, d) for p, d in sorted(hub.repos[repo_id].items()) if p.startswith(under)])
        elif m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            repo_id, rev, name = m[1], unquote(m[2]), unquote(m[3])
            if self.check(repo_id, rev, name):
                self.file(repo_id, name, head)
        else:
            self.error(404, "RepoNotFound")

    def check(self, repo_id: str, rev: str, name: str | None = None) -> bool:
        hub = self.hub
        if repo_id not in hub.repos:
            return self.error(404, "RepoNotFound")
        if rev not in ("main", hub.commit(repo_id)) and hub.tags.get(rev) != repo_id:
            return self.error(404, "RevisionNotFound")
        if name is not None and name not in hub.repos[repo_id]:
            return self.error(404, "EntryNotFound", hub.commit(repo_id))
        return True

    def entry(self, path: str, data: bytes) -> dict:
        entry = {"type": "file", "oid": git_oid(data), "size": len(data), "path": path}
        if path.endswith(LFS):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def file(self, repo_id: str, name: str, head: bool):
        hub, data, key = self.hub, self.hub.repos[repo_id][name], f"{repo_id}/{name}"
        etag = hashlib.sha256(data).hexdigest() if name.endswith(LFS) else git_oid(data)
        start = int(m[1]) if (m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")) else 0
        if not head and key in hub.was_cut and hub.down_after_cut:
            return self.error(503, None)
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", hub.commit(repo_id))
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if head:
            return
        if key in hub.cut and not start:  # half the file, then the connection closes
            hub.cut.discard(key)
            hub.was_cut.add(key)
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.wfile.write(data[start:])

    def json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status: int, code: str | None, commit: str | None = None) -> bool:
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False


@pytest.fixture
def local_hub():
    """A LocalHub serving on 127.0.0.1 (a free port) until the test ends."""
    hub = LocalHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("BoundHandler", (Handler,), {"hub": hub}))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    hub.url, hub.server = f"http://127.0.0.1:{server.server_address[1]}", server
    yield hub
    hub.stop()


@pytest.fixture
def hf_env(tmp_path, monkeypatch, local_hub) -> dict[str, str]:
    """huggingface_hub pointed at `local_hub`, with an empty cache and no token, as HF_ENDPOINT and HF_HOME
    set before it is imported would; the library reads those at import, so its constants are set too.
    An empty model search path (HOME, WALA_MODELS). → the environment for a `wala` subprocess."""
    from huggingface_hub import constants

    bars = importlib.import_module("huggingface_hub.utils.tqdm")  # the module: `utils.tqdm` is its class
    home = tmp_path / "hf"
    env = {"HF_ENDPOINT": local_hub.url, "HF_HOME": str(home), "HOME": str(tmp_path / "home")}
    for name in ("HF_TOKEN", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "WALA_MODELS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(constants, "ENDPOINT", local_hub.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", local_hub.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # stderr holds wala's lines only
    monkeypatch.setattr(bars, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    return dict(os.environ)


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1, for this process's huggingface_hub."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
