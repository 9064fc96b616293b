"""Distributed training: 2 CPU processes on gloo (127.0.0.1) equal one process on the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from distributed_worker import CASES, SENTENCES, step_gradients

from simcse_core.cli import main
from simcse_core.model.loading import load_encoder
from simcse_core.training import distributed

pytestmark = pytest.mark.slow  # each test starts processes (about 25 s on 2 cores)

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("distributed_worker.py")
WORLD_SIZE = 2
TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the worker as 2 processes, as torchrun --nproc_per_node 2 would; their output folder."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    out = tmp_path_factory.mktemp("ddp")
    data = out / "sentences.txt"
    data.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    port = str(_free_port())
    procs = []
    for rank in range(WORLD_SIZE):
        env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "GLOO_SOCKET_IFNAME": "lo",
               "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(WORLD_SIZE)}
        procs.append(subprocess.Popen(
            [sys.executable, str(WORKER), str(tiny_model_dir), str(data), str(out)], env=env, cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT_S))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for rank, (proc, (stdout, stderr)) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"rank {rank} failed:\n{stdout}\n{stderr[-3000:]}"
    (out / "rank0-stdout.txt").write_text(outputs[0][0], encoding="utf-8")
    (out / "rank1-stdout.txt").write_text(outputs[1][0], encoding="utf-8")
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_give_the_loss_and_gradients_of_one(two_processes: Path, tiny_model_dir: Path, case: str):
    config, batch = CASES[case]
    expected_loss, expected = step_gradients(str(tiny_model_dir), config, batch, distributed.Processes())
    assert len(expected) > 10
    for rank in range(WORLD_SIZE):
        loss, grads = torch.load(two_processes / f"grads-rank{rank}.pt")[case]
        assert loss == pytest.approx(expected_loss, abs=1e-5)  # each process: the loss of the global batch
        assert grads.keys() == expected.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, expected[name], atol=1e-5, rtol=1e-4, msg=name)


def test_an_ungathered_shard_would_not_match(tiny_model_dir: Path):
    """The check above can fail: one shard's own loss (no gathered negatives) differs from the global one."""
    config, batch = CASES["unsup"]
    global_loss, _ = step_gradients(str(tiny_model_dir), config, batch, distributed.Processes())
    shard_loss, _ = step_gradients(str(tiny_model_dir), config, batch[:4], distributed.Processes())
    assert abs(shard_loss - global_loss) > 1e-2


def test_the_cli_under_two_processes_trains_like_one(two_processes: Path, tiny_model_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture):
    data = two_processes / "sentences.txt"
    code = main(["train", "--model", str(tiny_model_dir), "--device", "cpu", "--precision", "fp32", "--data",
                 str(data), "--out", str(tmp_path / "one"), "--steps", "2", "--batch-size", "8", "--lr", "1e-3",
                 "--dropout", "0", "--pooler", "cls", "--eval-set", "none"])
    assert code == 0
    log = (two_processes / "rank0-stdout.txt").read_text(encoding="utf-8")
    assert "8 examples per step (global) = 2 process(es) x 4" in log
    assert _losses(log) == _losses(capsys.readouterr().out) and len(_losses(log)) == 2
    assert (two_processes / "rank1-stdout.txt").read_text(encoding="utf-8") == ""  # only rank 0 reports
    one = load_encoder(tmp_path / "one", device="cpu", precision="fp32")
    two = load_encoder(two_processes / "cli-model", device="cpu", precision="fp32")
    # Two AdamW steps of lr 1e-3 turn 1e-7 gradient differences into up to 1e-5 weight differences (Adam
    # divides each gradient by its own size), so the weights are compared to a tenth of one step.
    for (name, a), b in zip(one.state_dict().items(), two.state_dict().values()):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=0, msg=name)


def _losses(log: str) -> list[str]:
    return [line.split("loss")[1].split()[0] for line in log.splitlines() if line.startswith("step ")][1:]


def test_a_global_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        distributed.Processes(rank=0, world_size=3).shard_size(8)
    assert distributed.Processes(rank=1, world_size=2).shard(list("abcdefgh")) == list("efgh")
