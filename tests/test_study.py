"""runs/grpo_vs_igpo.py: per-arm resume, the results table and the mean curves, on fake training logs.
Run: python -m pytest -q tests/test_study.py"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runs"))
import grpo_vs_igpo as S  # noqa: E402


def fake_log(hard_end: float, n: int = 6) -> list[dict]:
    rows = [{"step": 0, "eval_accuracy": 0.5, "eval_by_kind": {"easy": 0.9, "hard": 0.1},
             "eval_sampled_by_kind": {"easy": 0.8, "hard": 0.05}}]
    rows += [{"step": s, "reward": 0.1 * s, "all_wrong": 0.6 if s <= 5 else 0.0, "all_wrong_after": 0.2,
              "rollouts": 192} for s in range(1, n + 1)]
    return rows + [{"step": n, "eval_accuracy": 0.6, "eval_by_kind": {"easy": 0.9, "hard": hard_end},
                    "eval_sampled_by_kind": {"easy": 0.8, "hard": hard_end / 2}}]


def test_finished_arms_are_skipped_and_interrupted_ones_resume(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(S.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    runs = {"igpo_s1": ["summary.json", "meta.json"], "igpo_s2": ["meta.json"], "igpo_s3": []}
    for name, files in runs.items():
        os.makedirs(tmp_path / name)
        for f in files:
            (tmp_path / name / f).write_text("{}")
    for seed in (1, 2, 3):
        S.train("igpo", seed, "out/sft_s{seed}", ["--max_steps=5", "--estimator=elbo"], str(tmp_path))
    assert len(calls) == 2  # seed 1 is finished
    assert "--resume=True" in calls[0] and "--resume=True" not in calls[1]
    assert "--init_from=out/sft_s2" in calls[0] and {"--max_steps=5", "--estimator=elbo"} <= set(calls[0])


def test_table_reports_hard_accuracy_per_seed_with_mean_and_spread():
    results = {"grpo": [fake_log(0.1), fake_log(0.2), fake_log(0.3)], "igpo": [fake_log(0.5)] * 3}
    text = S.table(results)
    grpo, igpo = text.splitlines()[2:]
    # sampled start -> end, its per-seed ends, greedy start -> end, easy greedy
    assert grpo.startswith("| grpo | 0.050 ± 0.000 -> 0.100 ± 0.050 | 0.050, 0.100, 0.150 | "
                           "0.100 ± 0.000 -> 0.200 ± 0.100 | 0.900 ± 0.000 -> 0.900 ± 0.000 |")
    assert igpo.startswith("| igpo | 0.050 ± 0.000 -> 0.250 ± 0.000 | 0.250, 0.250, 0.250 |")
    assert grpo.endswith("| 0.60 (0.20) | 0.50 (0.20) | 192 (1152) |")  # all-wrong, rollouts


def test_mean_curves_average_seeds_step_by_step():
    rows = S.mean_rows([fake_log(0.1), fake_log(0.3)])
    evals = [r for r in rows if "eval_accuracy" in r]
    assert [r["step"] for r in evals] == [0, 6] and abs(evals[1]["eval_by_kind"]["hard"] - 0.2) < 1e-12
    assert abs(evals[1]["eval_sampled_by_kind"]["hard"] - 0.1) < 1e-12
    assert [r["reward"] for r in rows if "reward" in r] == [0.1 * s for s in range(1, 7)]
    json.dumps(rows)  # plain numbers only
