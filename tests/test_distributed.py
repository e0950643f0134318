"""FSDP2 on CPU (gloo): 1-rank vs 2-rank parity of the IGPO update, and no deadlock with uneven
re-rollouts or uneven groups under every estimator. Run: python -m pytest -q tests/test_distributed.py"""
import os
import subprocess
import sys

import torch
from conftest import child_env, torchrun

HERE = os.path.dirname(os.path.abspath(__file__))


def test_two_ranks_match_one_rank_and_uneven_rerollouts_or_groups_do_not_hang(tmp_path):
    script = os.path.join(HERE, "dist_check.py")
    subprocess.run([sys.executable, script, str(tmp_path)], check=True, timeout=240, env=child_env())
    torchrun([script, str(tmp_path)])
    one, two = torch.load(tmp_path / "world1.pt"), torch.load(tmp_path / "world2.pt")
    losses = (one["losses"], two["losses"])
    assert all(abs(a - b) < 1e-5 for a, b in zip(*losses)), losses
    for k, v in one["state"].items():
        assert torch.allclose(v, two["state"][k], atol=1e-5), k
    for run in (one, two):  # one update per estimator, rank r with r + 1 groups
        assert list(run["uneven"]) == ["mean_field", "coupled", "elbo"]
        assert all(torch.isfinite(torch.tensor(v)).all() for v in run["uneven"].values())
