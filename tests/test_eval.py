"""eval.py's CLI: files, metrics, resume, avg@k, a real benchmark, clean errors, 1 vs 2 ranks.
Run: OMP_NUM_THREADS=1 python -m pytest -q tests/test_eval.py"""
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

import eval as E
import model as M
from conftest import TINY, torchrun
from data import TASKS, arith
from data.files import SHARED

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = ["--task=toy", "--gen_lens=16", "--block_len=8", "--limit=6"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matmuls gain nothing from a second thread, and on busy shared cores its spinning costs seconds."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def ckpt(tmp_path):
    """A random tiny model on disk. max_seq_len is raised (RoPE has no length limit) so that GSM8K's
    byte-tokenized prompts, ~600 tokens, fit."""
    model = M.build(dataclasses.replace(TINY, max_seq_len=2048), "cpu", seed=0)
    M.save(model, str(tmp_path / "ckpt"))
    return str(tmp_path / "ckpt")


def records(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_toy_eval_writes_generations_metrics_and_table(ckpt, tmp_path, capsys):
    out = tmp_path / "ev"
    res = E.main([f"--ckpt={ckpt}", f"--out_dir={out}", *TOY])
    assert sorted(os.listdir(out)) == ["generations_16.jsonl", "metrics.json", "settings.json"]
    recs = records(out / "generations_16.jsonl")
    assert sorted(int(r["id"]) for r in recs) == list(range(6)) and {r["sample"] for r in recs} == {0}
    test = arith.load("test")
    for r in recs:  # the verdict is the task's own scorer on the stored text
        ex = test[int(r["id"])]
        assert r["answer"] == ex["answer"] and r["extracted"] == arith.extract(r["text"])
        assert r["correct"] == arith.correct(r["text"], ex)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["results"] == res and len(res) == 1
    assert res[0]["gen_len"] == 16 and res[0]["n"] == 6 and res[0]["k"] == 1
    assert res[0]["steps"] == 16  # toy: steps = gen_len
    assert res[0]["accuracy"] == sum(r["correct"] for r in recs) / 6
    for kind in ("easy", "hard"):  # the test split alternates the kinds
        mine = [r["correct"] for r in recs if test[int(r["id"])]["kind"] == kind]
        assert len(mine) == 3 and res[0]["by_kind"][kind] == sum(mine) / 3
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("toy ")]
    assert row and row[-1].split()[:4] == ["toy", "16", "6", "1"]


def test_rerun_resumes_only_missing_and_torn_pairs(ckpt, tmp_path, monkeypatch):
    out, argv = tmp_path / "ev", [f"--ckpt={ckpt}", f"--out_dir={tmp_path / 'ev'}", *TOY, "--batch_size=2"]
    first = E.main(argv)
    path = out / "generations_16.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:4]) + lines[4][:20])  # an interrupted run: 4 done, one line torn
    calls = []
    real = E.sample
    monkeypatch.setattr(E, "sample", lambda model, prompts, *a, **kw: calls.append(len(prompts)) or
                        real(model, prompts, *a, **kw))  # counts the prompts sampled
    second = E.main(argv)
    assert sum(calls) == 2 and second[0]["new"] == 2 and second[0]["accuracy"] == first[0]["accuracy"]
    recs = records(path)  # every line parses: the torn one was dropped, not appended to
    assert len(recs) == 6 and len({(r["id"], r["sample"]) for r in recs}) == 6
    calls.clear()
    assert E.main(argv)[0]["new"] == 0 and calls == [] and len(records(path)) == 6
    with pytest.raises(ValueError, match="other settings.*block_len differ"):  # one protocol per out_dir
        E.main(argv + ["--block_len=16"])


def test_avg_at_k_writes_k_samples_per_problem(ckpt, tmp_path):
    out = tmp_path / "ev"
    res = E.main([f"--ckpt={ckpt}", f"--out_dir={out}", *TOY, "--limit=3", "--k=2", "--temperature=1.0"])
    recs = records(out / "generations_16.jsonl")
    assert sorted((r["id"], r["sample"]) for r in recs) == [(str(i), j) for i in range(3) for j in range(2)]
    assert res[0]["k"] == 2 and res[0]["accuracy"] == sum(r["correct"] for r in recs) / 6
    with pytest.raises(ValueError, match="temperature"):  # greedy k samples would be k copies
        E.main([f"--ckpt={ckpt}", f"--out_dir={out}", *TOY, "--k=2"])


def test_bad_settings_are_clear_errors(ckpt, tmp_path):
    with pytest.raises(ValueError, match="not divisible by block_len"):
        E.main([f"--ckpt={ckpt}", f"--out_dir={tmp_path}", "--gen_lens=20", "--block_len=8"])
    with pytest.raises(ValueError, match="steps=5 is not divisible"):
        E.main([f"--ckpt={ckpt}", f"--out_dir={tmp_path}", "--gen_lens=16", "--block_len=8", "--steps=5"])
    with pytest.raises(FileNotFoundError, match="no such checkpoint folder"):
        E.main([f"--ckpt={tmp_path / 'nope'}"])
    cmd = [sys.executable, "eval.py", "--task=nope"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    known = ", ".join(repr(t) for t in TASKS)
    assert proc.stderr.strip() == f"error: --task=nope: expected one of {known}"


@pytest.mark.skipif(not (SHARED / "gsm8k_test.jsonl").is_file(), reason="no shared/data/gsm8k_test.jsonl")
def test_gsm8k_runs_end_to_end_on_shared_data(ckpt, tmp_path, monkeypatch):
    monkeypatch.delenv("NANO_IGPO_DATA", raising=False)  # the shared copy, never a download
    out = tmp_path / "ev"
    gsm8k = ["--task=gsm8k", "--limit=2", "--gen_lens=16", "--block_len=8"]
    res = E.main([f"--ckpt={ckpt}", f"--out_dir={out}", *gsm8k])
    recs = records(out / "generations_16.jsonl")
    assert [r["id"] for r in sorted(recs, key=lambda r: r["id"])] == ["gsm8k/test/0", "gsm8k/test/1"]
    assert res[0]["n"] == 2 and res[0]["accuracy"] == 0.0  # random weights, 16 tokens: no boxed answer
    assert all(r["extracted"] is None and not r["correct"] for r in recs)


def test_two_ranks_write_what_one_rank_writes(ckpt, tmp_path):
    """5 problems, batch 1: rank 0 runs 3 batches, rank 1 two and then joins the last gather empty-handed.
    Greedy generations are the same whatever the sharding."""
    argv = [f"--ckpt={ckpt}", *TOY, "--limit=5", "--batch_size=1", "--device=cpu"]
    E.main(argv + [f"--out_dir={tmp_path / 'one'}"])
    # as users launch it: the agent hosts the store
    torchrun(["eval.py", *argv, f"--out_dir={tmp_path / 'two'}"])

    def by_id(d):
        return sorted(records(tmp_path / d / "generations_16.jsonl"), key=lambda r: r["id"])
    one, two = by_id("one"), by_id("two")
    assert one == two and len(one) == 5
