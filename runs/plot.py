"""
A picture of any run: the curves of one or more run folders' log.jsonl in one SVG, runs overlaid, no
plotting library.

    python runs/plot.py out/igpo                          # -> out/igpo/curves.svg
    python runs/plot.py out/grpo out/igpo --out=cmp.svg   # two runs on the same axes

Panels (those a log has data for): reward, held-out accuracy, the toy's hard and easy accuracy (greedy, and
sampled where the run logged it) against the rollouts sampled so far, all-wrong groups before (solid) and
after (dashed) inpainting, KL, loss, clip fraction; an SFT run's log gives loss and grad norm. The study
script (runs/grpo_vs_igpo.py) draws its per-arm means with the same functions.
"""
import json
import os
import sys

COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf"]
# (title, [(log key, dotted for a nested field, dashed)], x key): a panel is drawn when any run has any of its
# keys; its x is the step, or the rollouts sampled so far
PANELS = [
    ("mean reward of the rollouts", [("reward", False)]),
    ("held-out accuracy (greedy)", [("eval_accuracy", False)]),
    ("hard: greedy (solid) / sampled avg@k (dashed)", [("eval_by_kind.hard", False),
                                                      ("eval_sampled_by_kind.hard", True)], "rollouts_seen"),
    ("easy: greedy (solid) / sampled avg@k (dashed)", [("eval_by_kind.easy", False),
                                                      ("eval_sampled_by_kind.easy", True)], "rollouts_seen"),
    ("all-wrong groups: before (solid) / after (dashed)", [("all_wrong", False), ("all_wrong_after", True)]),
    ("KL to the reference", [("kl", False)]),
    ("loss", [("loss", False)]),
    ("clip fraction", [("clip_frac", False)]),
    ("grad norm", [("grad_norm", False)]),
]
W, H = 330, 210  # one panel


def read_log(out_dir: str) -> list[dict]:
    """The rows of out_dir/log.jsonl (a line cut short by a crash is skipped)."""
    rows = []
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def series(rows: list[dict], key: str, x: str = "step") -> list[tuple[float, float]]:
    """(x, value) of every row holding `key` (and x), in step order; of a step's rows the last wins (a
    resume)."""
    points = {}
    for r in rows:
        v = r
        for part in key.split("."):  # "eval_by_kind.hard": a field of a nested record
            v = v.get(part) if isinstance(v, dict) else None
        if isinstance(v, (int, float)) and isinstance(r.get(x), (int, float)):
            points[r["step"]] = (float(r[x]), float(v))
    return [points[s] for s in sorted(points)]


def panel(title: str, lines: list[tuple[str, list, bool]], x0: float, y0: float, xlabel: str = "step") -> str:
    """One panel: lines = [(color, [(step, value)], dashed)], axes from the data (zero included)."""
    pts = [p for _, ps, _ in lines for p in ps]
    xlo, xhi = min(x for x, _ in pts), max(x for x, _ in pts)
    ylo, yhi = min(0.0, min(y for _, y in pts)), max(y for _, y in pts)
    yhi = yhi if yhi > ylo else ylo + 1.0
    px = lambda x: x0 + 45 + (W - 60) * (x - xlo) / max(xhi - xlo, 1e-9)
    py = lambda y: y0 + H - 28 - (H - 50) * (y - ylo) / (yhi - ylo)
    out = [f'<text x="{x0 + W / 2}" y="{y0 + 14}" text-anchor="middle" font-size="12">{title}</text>',
           f'<line x1="{px(xlo)}" y1="{py(ylo)}" x2="{px(xhi)}" y2="{py(ylo)}" stroke="black"/>',
           f'<line x1="{px(xlo)}" y1="{py(ylo)}" x2="{px(xlo)}" y2="{py(yhi)}" stroke="black"/>']
    for v in (ylo, (ylo + yhi) / 2, yhi):
        out.append(f'<text x="{px(xlo) - 4}" y="{py(v) + 4}" text-anchor="end" font-size="10">{v:.3g}</text>')
    for v in (xlo, xhi):
        out.append(f'<text x="{px(v)}" y="{py(ylo) + 14}" text-anchor="middle" font-size="10">{v:g}</text>')
    out.append(f'<text x="{x0 + W / 2}" y="{y0 + H - 2}" text-anchor="middle" font-size="10">{xlabel}</text>')
    for color, ps, dashed in lines:
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        xy = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ps)
        out.append(f'<polyline points="{xy}" fill="none" stroke="{color}" stroke-width="1.8"{dash}/>')
        if len(ps) <= 12:  # sparse curves (evaluations): mark the points
            out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>' for x, y in ps]
    return "\n".join(out)


def svg(runs: dict[str, list[dict]], cols: int = 3) -> str:
    """runs: label -> log rows. One panel per quantity that some run logged, a legend of the labels."""
    colors = {label: COLORS[i % len(COLORS)] for i, label in enumerate(runs)}
    drawn = []
    for title, keys, *x in PANELS:
        x = x[0] if x else "step"
        lines = [(colors[label], s, dashed) for label, rows in runs.items() for key, dashed in keys
                 if (s := series(rows, key, x))]
        if lines:
            drawn.append((title, lines, "rollouts sampled" if x == "rollouts_seen" else x))
    cols = min(cols, len(drawn))
    rows_n = -(-len(drawn) // cols)
    width, height = cols * W + 20, rows_n * H + 30 + 18 * -(-len(runs) // 4)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif">', '<rect width="100%" height="100%" fill="white"/>']
    for i, (title, lines, xlabel) in enumerate(drawn):
        out.append(panel(title, lines, 10 + (i % cols) * W, (i // cols) * H, xlabel))
    for i, label in enumerate(runs):  # the legend, four labels a row
        x, y = 20 + (i % 4) * (width - 20) / 4, rows_n * H + 22 + 18 * (i // 4)
        out.append(f'<text x="{x:.0f}" y="{y}" fill="{colors[label]}" font-size="12">&#9632; {label}</text>')
    return "\n".join(out + ["</svg>\n"])


def main(argv: list[str]):
    dirs = [a for a in argv if not a.startswith("--")]
    opts = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    if not dirs or set(opts) - {"out"}:
        raise SystemExit("usage: python runs/plot.py OUT_DIR [OUT_DIR ...] [--out=FILE.svg]")
    missing = [d for d in dirs if not os.path.isfile(os.path.join(d, "log.jsonl"))]
    if missing:
        raise SystemExit(f"no log.jsonl in {', '.join(missing)}")
    out = opts.get("out") or os.path.join(dirs[0], "curves.svg")
    runs = {os.path.normpath(d): read_log(d) for d in dirs}
    with open(out, "w") as f:
        f.write(svg(runs))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
