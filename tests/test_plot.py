"""runs/plot.py: log.jsonl files -> one SVG. Run: python -m pytest -q tests/test_plot.py"""
import json
import os
import sys
import xml.etree.ElementTree as ET

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runs"))
import plot  # noqa: E402

NS = "{http://www.w3.org/2000/svg}"


def write_log(d, rows, torn=False):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "log.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
        if torn:
            f.write('{"step": 9, "rew')  # a line cut short by a crash


def rl_rows(n, shift=0.0):
    kinds = lambda e, h: dict(eval_by_kind={"easy": e, "hard": h},  # noqa: E731
                              eval_sampled_by_kind={"easy": e, "hard": h})
    rows = [{"step": 0, "eval_accuracy": 0.3, "rollouts_seen": 0, **kinds(0.5, 0.1)}]
    for s in range(1, n + 1):
        rows.append({"step": s, "reward": 0.1 * s + shift, "all_wrong": 0.5, "all_wrong_after": 0.2,
                     "kl": 0.01, "loss": -0.1, "clip_frac": 0.0, "grad_norm": 1.0})
    return rows + [{"step": n, "eval_accuracy": 0.4, "rollouts_seen": 128 * n, **kinds(0.6, 0.2)}]


def test_runs_are_overlaid_one_curve_per_run_and_quantity(tmp_path):
    write_log(tmp_path / "a", rl_rows(5), torn=True)
    write_log(tmp_path / "b", rl_rows(4, shift=1.0))
    write_log(tmp_path / "sft", [{"step": s, "loss": 1.0 / s, "grad_norm": 0.5} for s in range(1, 4)])
    out = tmp_path / "cmp.svg"
    plot.main([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "sft"), f"--out={out}"])
    root = ET.parse(out).getroot()  # well-formed
    titles = [t.text for t in root.iter(NS + "text") if t.text in [p[0] for p in plot.PANELS]]
    assert titles == [p[0] for p in plot.PANELS]  # every panel has data from some run
    lines = list(root.iter(NS + "polyline"))
    # RL runs: 12 curves each (all-wrong and the two kinds draw two); the SFT run: loss and grad norm
    assert len(lines) == 2 * 12 + 2
    assert sum(1 for p in lines if p.get("stroke-dasharray")) == 2 * 3  # after inpainting, sampled accuracy
    legend = [t.text for t in root.iter(NS + "text") if t.text and t.text.startswith("\u25a0")]
    assert [s.split(" ", 1)[1] for s in legend] == [str(tmp_path / d) for d in ("a", "b", "sft")]


def test_a_resumed_run_shows_each_step_once_the_last_row_winning():
    rows = [{"step": 1, "reward": 0.0}, {"step": 2, "reward": 0.5}, {"step": 2, "reward": 0.7}]
    assert plot.series(rows, "reward") == [(1, 0.0), (2, 0.7)]


def test_a_dotted_key_reads_a_nested_field_against_the_x_asked_for():
    rows = [{"step": 3, "eval_by_kind": {"hard": 0.25}, "rollouts_seen": 384},
            {"step": 4, "eval_accuracy": 0.5}]
    assert plot.series(rows, "eval_by_kind.hard") == [(3, 0.25)]
    assert plot.series(rows, "eval_by_kind.hard", x="rollouts_seen") == [(384, 0.25)]


def test_panels_without_data_are_left_out(tmp_path):
    write_log(tmp_path / "sft", [{"step": s, "loss": 1.0 / s} for s in range(1, 4)])
    root = ET.fromstring(plot.svg({"sft": plot.read_log(tmp_path / "sft")}))
    assert [t.text for t in root.iter(NS + "text") if t.text in [p[0] for p in plot.PANELS]] == ["loss"]


def test_a_folder_without_a_log_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no log.jsonl in"):
        plot.main([str(tmp_path)])
