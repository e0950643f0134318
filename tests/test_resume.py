"""Run folders tell the truth after a crash: a killed and resumed run logs and sums up exactly as an
uninterrupted one; one run per folder (evaluations too), and a rerun never replaces a run; a resume continues
the same run, from the same --init_from, or is refused; a diverging run stops before it saves or logs a NaN;
readers never see a half-moved checkpoint; eval.py never reuses generations of a retrained checkpoint.
Run: python -m pytest -q tests/test_resume.py"""
import contextlib
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import eval as E
import model as M
import sft
import train_igpo as T
from common import Runtime
from conftest import REPO, TINY, child_env, snapshot
from data import arith
from data.tokenizer import chat

# a script whose save of step STEP is killed (SIGKILL: no cleanup, its lock left behind), after that step's
# log rows are written
KILLED = """import os, sys
import {script} as S
save = S.save_checkpoint
def save_or_die(model, opt, out_dir, step, *args):
    if step == {step}:
        os.kill(os.getpid(), 9)
    save(model, opt, out_dir, step, *args)
S.save_checkpoint = save_or_die
S.main(sys.argv[1:])
"""
# holds a folder's lock, as a live run does, until killed
HOLDER = """import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("held", flush=True)
time.sleep(60)
"""


def killed_run(script: str, argv: list, step: int):
    code = KILLED.format(script=script, step=step)
    p = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, env=child_env(), capture_output=True)
    assert p.returncode == -9, p.stderr.decode()[-2000:]


@contextlib.contextmanager
def live_run(folder):
    """Another process holding `folder`'s lock."""
    os.makedirs(folder, exist_ok=True)
    lock = os.path.join(folder, ".lock")
    p = subprocess.Popen([sys.executable, "-c", HOLDER, lock], stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"held\n"
    try:
        yield p.pid
    finally:
        p.kill()
        p.wait()


def rows(path) -> list[dict]:
    """A log's rows without the timing fields (seconds, *_s, tok_per_s)."""
    untimed = lambda r: {k: v for k, v in r.items() if k != "seconds" and not k.endswith("_s")}  # noqa: E731
    return [untimed(json.loads(line)) for line in open(path)]


def same_run(a, b, files):
    for f in files:
        assert rows(a / f) == rows(b / f), f
    summary = [{k: v for k, v in json.load(open(d / "summary.json")).items() if "seconds" not in k}
               for d in (a, b)]
    assert summary[0] == summary[1]
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_igpo_killed_and_resumed_logs_and_sums_up_as_the_uninterrupted_run(tmp_path):
    args = ["--init_from=", "--prompts_per_step=2", "--group_size=2", "--gen_len=8", "--block_len=8",
            "--steps=4", "--mu=2", "--n_eval=2", "--eval_interval=2", "--ckpt_interval=2", "--levels=1",
            "--lr=1e-3", "--max_steps=4"]
    T.main(args + [f"--out_dir={tmp_path}/a"])
    log = rows(tmp_path / "a" / "log.jsonl")
    for e in [r for r in log if "eval_accuracy" in r]:  # the preset's sampled accuracy, and the x of a curve
        assert set(e["eval_sampled_by_kind"]) == {"easy", "hard"} and 0 <= e["eval_sampled"] <= 1
        seen = sum(r["rollouts"] for r in log if "reward" in r and r["step"] <= e["step"])
        assert e["rollouts_seen"] == seen
    killed_run("train_igpo", args + [f"--out_dir={tmp_path}/b"], step=4)  # the checkpoint is step 2's
    assert [r["step"] for r in rows(tmp_path / "b" / "log.jsonl")] == [0, 1, 2, 2, 3, 4, 4]  # 3, 4: lost
    T.main(args + [f"--out_dir={tmp_path}/b", "--resume=True"])  # the killed run's lock is no obstacle
    same_run(tmp_path / "a", tmp_path / "b", ["log.jsonl", "samples.jsonl"])


class Killed(BaseException):
    """Stands for a kill, in-process (a fresh process costs seconds): nothing catches it."""


def test_sft_killed_and_resumed_logs_and_sums_up_as_the_uninterrupted_run(tmp_path, monkeypatch):
    args = ["--batch_size=8", "--n_eval=0", "--log_interval=3", "--ckpt_interval=2", "--max_steps=5",
            "--warmup=2"]
    sft.main(args + [f"--out_dir={tmp_path}/a"])
    save = sft.save_checkpoint

    def save_or_die(model, opt, out_dir, step, *args):
        if step == 4:
            raise Killed
        save(model, opt, out_dir, step, *args)
    monkeypatch.setattr(sft, "save_checkpoint", save_or_die)
    with pytest.raises(Killed):
        sft.main(args + [f"--out_dir={tmp_path}/b"])
    monkeypatch.undo()
    assert [r["step"] for r in rows(tmp_path / "b" / "log.jsonl")] == [2, 3, 4]  # checkpoint steps log too
    sft.main(args + [f"--out_dir={tmp_path}/b", "--resume=True"])
    same_run(tmp_path / "a", tmp_path / "b", ["log.jsonl"])


def test_a_second_run_on_a_folder_is_refused_and_a_dead_runs_lock_is_not(tmp_path):
    argv = ["--batch_size=2", "--n_eval=0", "--max_steps=1", f"--out_dir={tmp_path}/run"]
    with live_run(tmp_path / "run") as pid:
        refusal = rf"run is in use by another run \(pid {pid}, .*another --out_dir"
        with pytest.raises(ValueError, match=refusal):
            sft.main(argv)
        assert os.listdir(tmp_path / "run") == [".lock"]  # nothing written
    sft.main(argv)  # the lock file of the killed holder is there, unheld
    assert "meta.json" in os.listdir(tmp_path / "run") and ".lock" not in os.listdir(tmp_path / "run")


def test_a_resume_continues_the_same_run_or_is_refused(tmp_path, capsys):
    argv = ["--batch_size=2", "--n_eval=0", "--max_steps=1", f"--out_dir={tmp_path}/run"]
    sft.main(argv)
    igpo = ["--resume=True", f"--out_dir={tmp_path}/run", "--init_from="]
    with pytest.raises(ValueError, match="holds a checkpoint of sft.py, not of train_igpo.py"):
        T.main(igpo)
    with pytest.raises(ValueError, match=r"--weight_decay=0.1 \(the run has 0.0\); a resume continues"):
        sft.main(argv + ["--resume=True", "--weight_decay=0.1"])  # AdamW's saved state would keep 0.0
    meta = tmp_path / "run" / "meta.json"
    saved = json.loads(meta.read_text())
    meta.write_text(json.dumps({**saved, "world_size": 2}))
    with pytest.raises(ValueError, match="saved at world size 2, this run has 1"):
        sft.main(argv + ["--resume=True"])
    meta.write_text(json.dumps(saved))
    assert sft.main(argv[:-2] + [f"--out_dir={tmp_path}/run", "--resume=True", "--max_steps=2"])["steps"] == 2
    assert "resuming" in capsys.readouterr().out and json.loads(meta.read_text())["step"] == 2


SFT = ["--batch_size=2", "--n_eval=0", "--max_steps=1"]
IGPO = ["--prompts_per_step=2", "--group_size=2", "--gen_len=8", "--block_len=8", "--steps=4", "--mu=2",
        "--n_eval=0", "--levels=1", "--ckpt_interval=1"]


def test_a_rerun_never_replaces_the_run_in_its_folder_and_overwrite_moves_it_aside(tmp_path, capsys):
    run = tmp_path / "run"
    sft.main(SFT + [f"--out_dir={run}"])
    before = snapshot(run)
    ways = rf"--resume=True to continue it, another --out_dir, or --overwrite=True to move it to {run}.old1"
    refusal = rf"^{run} holds a run \(meta.json, summary.json\) that a new run would replace: pass {ways}"
    again = [(sft.main, SFT + [f"--out_dir={run}"]), (T.main, [f"--out_dir={run}", "--init_from="])]
    for main, argv in again:  # the same command again, or another script into the folder
        with pytest.raises(ValueError, match=refusal):
            main(argv)
        assert snapshot(run) == before
    sft.main(SFT + [f"--out_dir={run}", "--overwrite=True", "--seed=2"])  # a new run; the old one moved aside
    assert snapshot(tmp_path / "run.old1") == before and snapshot(run) != before
    assert f"--overwrite: moved the run in {run} to {run}.old1" in capsys.readouterr().out


def test_a_resume_without_a_checkpoint_starts_a_new_run_and_says_so(tmp_path, capsys):
    sft.main(SFT + [f"--out_dir={tmp_path}/new", "--resume=True"])
    assert f"--resume: {tmp_path}/new holds no checkpoint: starting a new run" in capsys.readouterr().out
    assert json.loads((tmp_path / "new" / "meta.json").read_text())["step"] == 1
    (tmp_path / "done").mkdir()  # a finished run that saved no checkpoint (--ckpt_interval=0) is kept too
    (tmp_path / "done" / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match=r"done holds a run \(summary.json\) .*: pass another --out_dir, or"):
        T.main([f"--out_dir={tmp_path}/done", "--init_from=", "--resume=True"])
    assert snapshot(tmp_path / "done") == {"summary.json": b"{}"}


def test_igpo_resume_refuses_a_changed_init_from(tmp_path):
    init, run = tmp_path / "sft", tmp_path / "run"
    M.save(M.build(TINY, "cpu", seed=0), str(init))
    argv = IGPO + [f"--init_from={init}", f"--out_dir={run}"]
    T.main(argv + ["--max_steps=1"])
    T.main(argv + ["--max_steps=2", "--resume=True"])  # as it was: resumed
    M.save(M.build(TINY, "cpu", seed=1), str(init))  # retrained since: the KL reference would change
    before = snapshot(run)
    with pytest.raises(ValueError, match=rf"--init_from={init} has changed since the run started from it"):
        T.main(argv + ["--max_steps=3", "--resume=True"])
    assert snapshot(run) == before


def no_nan(run):
    for name, data in snapshot(run).items():
        if name.endswith((".json", ".jsonl")):
            assert b"NaN" not in data and b"Infinity" not in data, name


def test_a_diverging_sft_run_stops_before_it_logs_or_saves_a_nan(tmp_path, monkeypatch):
    run, saved, save, loss = tmp_path / "run", {}, sft.save_checkpoint, sft.sft_loss
    monkeypatch.setattr(sft, "save_checkpoint", lambda *a: save(*a) or saved.update(snapshot(run)))
    monkeypatch.setattr(sft, "sft_loss", lambda *a: loss(*a) * (float("nan") if saved else 1.0))
    diverged = r"^step 3: loss nan, grad_norm nan: the run diverged "
    with pytest.raises(ValueError, match=diverged + rf".*: {run} keeps its checkpoint of step 2$"):
        sft.main(SFT[:2] + ["--max_steps=4", "--ckpt_interval=2", "--log_interval=1", f"--out_dir={run}"])
    assert snapshot(run) == saved  # the checkpoint of step 2 and the log up to it, byte for byte
    no_nan(run)


def test_a_diverging_igpo_run_stops_before_it_logs_or_saves_a_nan(tmp_path, monkeypatch):
    run, saved, save, policy_loss = tmp_path / "run", {}, T.save_checkpoint, T.policy_loss
    monkeypatch.setattr(T, "save_checkpoint", lambda *a: save(*a) or saved.update(snapshot(run)))

    def nan_loss(*args):  # NaN from the round after step 1's checkpoint on
        loss, kl, clip = policy_loss(*args)
        return loss * (float("nan") if saved else 1.0), kl, clip
    monkeypatch.setattr(T, "policy_loss", nan_loss)
    diverged = r"^step 2: loss nan, kl .*, grad_norm nan: the run diverged "
    with pytest.raises(ValueError, match=diverged + rf".*: {run} keeps its checkpoint of step 1$"):
        T.main(IGPO + ["--init_from=", "--max_steps=3", f"--out_dir={run}"])
    assert snapshot(run) == saved
    no_nan(run)


def test_eval_takes_its_folders_lock(tmp_path):
    M.save(M.build(TINY, "cpu", seed=0), str(tmp_path / "ck"))
    with live_run(tmp_path / "ev") as pid:
        with pytest.raises(ValueError, match=rf"ev is in use by another run \(pid {pid}, "):
            E.main([f"--ckpt={tmp_path}/ck", f"--out_dir={tmp_path}/ev", "--limit=2"])
        assert os.listdir(tmp_path / "ev") == [".lock"]  # no settings.json, no generations


def half_moved(run) -> None:
    """run/ as a kill in the middle of moving step 2's checkpoint in leaves it: new weights, old meta.json."""
    for d, seed, step in ((run, 0, 1), (run / ".next", 1, 2)):
        M.save(M.build(TINY, "cpu", seed=seed), str(d))
        M.write_json(str(d / "meta.json"), {"step": step})
    os.replace(run / ".next" / "model.safetensors", run / "model.safetensors")


def test_a_half_moved_checkpoint_is_finished_before_it_is_read_never_under_a_live_run(tmp_path):
    run, argv = tmp_path / "run", [f"--ckpt={tmp_path}/run", f"--out_dir={tmp_path}/ev", "--limit=2"]
    half_moved(run)
    with live_run(run) as pid:
        with pytest.raises(ValueError, match=rf"in use by another run \(pid {pid}.*moving a checkpoint in"):
            E.main(argv)
    E.main(argv)
    assert json.loads((run / "meta.json").read_text())["step"] == 2 and not (run / ".next").exists()
    half_moved(tmp_path / "sft")
    sft.main([f"--init_from={tmp_path}/sft", "--max_steps=1", "--batch_size=2", "--n_eval=0",
              f"--out_dir={tmp_path}/out"])
    assert json.loads((tmp_path / "sft" / "meta.json").read_text())["step"] == 2


def test_eval_refuses_the_generations_of_a_checkpoint_since_retrained(tmp_path):
    ckpt, argv = tmp_path / "ck", [f"--ckpt={tmp_path}/ck", f"--out_dir={tmp_path}/ev", "--limit=2"]
    for seed in (0, 1):  # trained, evaluated, then trained further into the same folder
        M.save(M.build(TINY, "cpu", seed=seed), str(ckpt))
        M.write_json(str(ckpt / "meta.json"), {"step": seed + 1})
        if seed == 0:
            E.main(argv)
    with pytest.raises(ValueError, match="other settings or weights \\(checkpoint_state differ"):
        E.main(argv)


def test_rollouts_sample_with_the_configured_remasking(tiny, enc, monkeypatch):
    seen, real = [], E.sample
    monkeypatch.setattr(E, "sample", lambda *a, **kw: seen.append(kw["remasking"]) or real(*a, **kw))
    rt = Runtime(0, 1, torch.device("cpu"), contextlib.nullcontext())
    cfg = T.Config(group_size=2, gen_len=8, block_len=8, steps=4, remasking="random")
    exs = arith.load("train", n=2)
    T.rollouts(tiny, rt, arith, enc, exs, [chat(enc, arith.prompt(ex)) for ex in exs], cfg,
               __import__("random").Random(0), 0)
    assert seen and set(seen) == {"random"}


def test_wandb_gets_the_log_rows_and_is_checked_at_start(tmp_path, monkeypatch):
    rows, inits = [], []
    fake = type(sys)("wandb")
    fake.init = lambda **kw: inits.append(kw)
    fake.log = lambda row, step: rows.append({"step": step, **row})
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    argv = [f"--out_dir={tmp_path}/run", "--batch_size=4", "--max_steps=2", "--log_interval=1", "--n_eval=0",
            "--wandb=True"]
    sft.main(argv)
    logged = [json.loads(line) for line in open(f"{tmp_path}/run/log.jsonl")]
    assert rows == logged and len(rows) == 2 and inits[0]["config"]["max_steps"] == 2
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed: refused before anything is written
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="--wandb=True: .*pip install wandb"):
        sft.main([f"--out_dir={tmp_path}/other", "--wandb=True"])
    assert not os.path.exists(f"{tmp_path}/other")
