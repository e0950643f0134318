"""Shared fixtures: the byte tokenizer, a seeded tiny model, the toy task. Run: python -m pytest -q tests"""
import os
import subprocess
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
torch.set_num_threads(1)  # tiny models: one thread is fastest, and stays fast on a busy machine

import model as M  # noqa: E402
from data.tokenizer import EOS, MASK, get_tokenizer, special_id  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = M.ModelConfig(vocab_size=264, n_layer=2, n_head=4, n_embd=32, mlp_hidden=64, max_seq_len=128)


@pytest.fixture
def enc():
    return get_tokenizer("byte")


@pytest.fixture
def ids(enc):
    return {"mask": special_id(enc, MASK), "eos": special_id(enc, EOS)}


@pytest.fixture
def tiny():
    return M.build(TINY, "cpu", seed=0).eval()


def snapshot(folder) -> dict:
    """{path: bytes} of every file under folder but the lock (what a failed run must leave as it was)."""
    files = (os.path.join(d, f) for d, _, names in os.walk(folder) for f in names if f != ".lock")
    return {os.path.relpath(p, folder): open(p, "rb").read() for p in sorted(files)}


def child_env() -> dict:
    """The environment for a script run as a fresh process: no inherited rank variables, one thread per
    process."""
    drop = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "OMP_NUM_THREADS": "1"}


def torchrun(args: list, nproc: int = 2):
    """torchrun --standalone --nproc_per_node=nproc ARGS from the repository root, one thread per rank. About
    one run in a hundred on a loaded CPU, a rank aborts after its last barrier, inside torch's gloo teardown,
    with "terminate called without an active exception": that exit is let through and the caller checks the
    outputs (all written before that barrier); any other failure shows the ranks' output."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    p = subprocess.run(cmd, cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=240)
    if p.returncode and "terminate called without an active exception" not in p.stderr:
        output = f"{p.stdout[-2000:]}\n{p.stderr[-4000:]}"
        raise AssertionError(f"torchrun {' '.join(args)}: exit {p.returncode}\n{output}")
