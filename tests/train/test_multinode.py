"""torchrun across machines, played on one: two agents of one process each (`--nnodes 2`, a c10d
rendezvous on 127.0.0.1) train the same weights as one agent running both processes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import torch
from safetensors.torch import load_file

TINY = "configs/ae_tiny.yaml"
TIMEOUT_S = 300
# one thread a rank (the 2-process agent would set it, a 1-process agent not: same arithmetic in both);
# gloo on the loopback only
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_agent(launch: list[str], prepared, out, log) -> subprocess.Popen:
    """A torchrun agent running `wala train-ae` (4 steps of 2 shapes a rank) into `out`; its workers
    share its process group, so one kill ends them all."""
    train = ["train.steps=4", "train.batch_size=2", "train.eval_samples=2", "train.checkpoint_every=0"]
    sets = [arg for value in [f"train.data={prepared}", f"train.out={out}", *train] for arg in ("--set", value)]
    cmd = [sys.executable, "-m", "torch.distributed.run", *launch, "-m", "wala.cli", "train-ae", TINY, *sets]
    return subprocess.Popen(cmd, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _run_agents(launches: list[list[str]], prepared, out, tmp_path) -> None:
    """Starts one agent per launch line, waits for all (bounded), and kills what is left on failure."""
    logs = [open(tmp_path / f"agent{i}.log", "w") for i in range(len(launches))]
    agents = [_start_agent(launch, prepared, out, log) for launch, log in zip(launches, logs)]
    deadline = time.monotonic() + TIMEOUT_S
    try:
        codes = [agent.wait(timeout=max(1.0, deadline - time.monotonic())) for agent in agents]
    except subprocess.TimeoutExpired:
        codes = None
    finally:
        for agent in agents:
            if agent.poll() is None:
                os.killpg(agent.pid, signal.SIGKILL)
                agent.wait()
        for log in logs:
            log.close()
    tails = "\n".join((tmp_path / f"agent{i}.log").read_text()[-2000:] for i in range(len(launches)))
    assert codes is not None, f"agents still running after {TIMEOUT_S} s:\n{tails}"
    assert codes == [0] * len(agents), tails


def test_two_single_process_nodes_train_the_same_weights_as_one_two_process_node(prepared, tmp_path):
    port, run_id = _free_port(), f"wala-{uuid.uuid4().hex[:8]}"
    node = [
        "--nnodes=2",
        "--nproc-per-node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        f"--rdzv-id={run_id}",
        "--local-addr=127.0.0.1",
    ]
    _run_agents([node, node], prepared, tmp_path / "two_nodes", tmp_path)
    _run_agents([["--standalone", "--nproc-per-node=2"]], prepared, tmp_path / "one_node", tmp_path)

    records = [json.loads(line) for line in (tmp_path / "two_nodes" / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 4, "ranks_in_sync": True, "world": 2} in records
    two = load_file(str(tmp_path / "two_nodes" / "step-00000004.safetensors"))
    one = load_file(str(tmp_path / "one_node" / "step-00000004.safetensors"))
    assert two.keys() == one.keys()
    # bit-identical: the same ranks see the same samples, and gloo sums the two ranks' gradients in
    # the same order whichever agent hosts rank 0 (a sum of two floats does not depend on their order)
    for key in one:
        assert torch.equal(two[key], one[key]), key
