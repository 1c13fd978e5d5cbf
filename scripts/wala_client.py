"""An example client of `wala serve`'s API, with the standard library only: send a condition as a JSON job,
follow its progress, download the mesh.

    python scripts/wala_client.py http://127.0.0.1:7860 --model WaLa-SV-1B chair.png -o out/
    python scripts/wala_client.py URL --model WaLa-DM4-1B 3.png 6.png 10.png 26.png --seed 7 --format obj

Prints the progress on stderr and the written file's path on stdout; exit status 1 with the server's one
line when the job fails. A server bound to anything but loopback wants its token (`--token`).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def call(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> dict:
    """One API call → its JSON answer; a refusal raises RuntimeError with the server's line."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{exc.code}: {json.loads(exc.read()).get('error', exc.reason)}") from None


def submit(server: str, model: str, files: list[Path], token: str | None = None, **settings) -> str:
    """Queues a job (files sent base64 in a JSON body) → its id."""
    body = {
        "model": model,
        "files": [{"name": f.name, "data": base64.b64encode(f.read_bytes()).decode()} for f in files],
        **{k: v for k, v in settings.items() if v is not None},
    }
    return call(f"{server}/api/jobs", "POST", body, token)["id"]


def wait(server: str, job: str, token: str | None = None, every: float = 0.5, report=None) -> dict:
    """Polls a job until it ends → its result links; a failed or cancelled job raises RuntimeError."""
    while True:
        state = call(f"{server}/api/jobs/{job}", token=token)
        if state["state"] == "done":
            return state["result"]
        if state["state"] not in ("queued", "running"):
            raise RuntimeError(state["error"] or f"job {state['state']}")
        if report:
            report(state)
        time.sleep(every)


def download(server: str, link: str, target: Path, token: str | None = None) -> Path:
    request = urllib.request.Request(server + link, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=60) as answer:
        target.write_bytes(answer.read())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="generate a shape with a running `wala serve`")
    parser.add_argument("server", help="its address, e.g. http://127.0.0.1:7860")
    parser.add_argument("files", nargs="*", type=Path, help="the condition's files (none: unconditional)")
    parser.add_argument("--model", required=True, help="a name from GET /api/models")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("glb", "obj"), default="glb")
    parser.add_argument("-o", "--output", type=Path, default=Path("."))
    parser.add_argument("--token", help="the token a non-loopback server printed")
    args = parser.parse_args(argv)
    server = args.server.rstrip("/")

    def report(state: dict) -> None:
        p = state["progress"]
        shown = f"step {p['step']}/{p['steps']}" if p["stage"] == "sampling" else p["stage"]
        print(f"\r{state['state']}: {shown}   ", end="", file=sys.stderr, flush=True)

    try:
        job = submit(
            server, args.model, args.files, args.token, steps=args.steps, guidance=args.guidance, seed=args.seed
        )
        result = wait(server, job, args.token, report=report)
        args.output.mkdir(parents=True, exist_ok=True)
        path = download(server, result[args.format], args.output / f"{job}.{args.format}", args.token)
    except (RuntimeError, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    print(f"\ndone in {result['seconds']} s, {result['faces']} faces", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
