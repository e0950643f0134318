"""
The experiment the paper is about, on the toy task: GRPO vs IGPO from the same SFT checkpoint, 3 seeds each.

    python runs/grpo_vs_igpo.py --init_from=out/sft --out_dir=out/compare --jobs=2

Three arms:
    grpo          plain GRPO (--inpaint=False): G rollouts per prompt, nothing else
    grpo_resample GRPO with the same rollout budget as IGPO: an all-wrong group gets G more rollouts
                  without hints (eta = 0), correct ones replace wrong ones (the paper's sample-matched
                  baseline)
    igpo          IGPO: the G extra rollouts carry hint chunks (eta ~ U[0.2, 0.6])
Writes out_dir/results.md (a table) and out_dir/curves.svg (reward and all-wrong fraction per step, mean
over seeds), with no plotting library.
"""
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ARMS = {"grpo": ["--inpaint=False"], "grpo_resample": ["--eta_low=0", "--eta_high=0"], "igpo": []}
COLORS = {"grpo": "#888888", "grpo_resample": "#1f77b4", "igpo": "#d62728"}


def run(arm, seed, args, out_dir):
    d = os.path.join(out_dir, f"{arm}_s{seed}")
    if not os.path.isfile(os.path.join(d, "summary.json")):
        cmd = [sys.executable, "train_igpo.py", f"--out_dir={d}", f"--seed={seed}"] + ARMS[arm] + args
        env = dict(os.environ, OMP_NUM_THREADS="1")
        with open(os.path.join(out_dir, f"{arm}_s{seed}.log"), "w") as f:
            subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, env=env)
    with open(os.path.join(d, "log.jsonl")) as f:
        log = [json.loads(line) for line in f]
    with open(os.path.join(d, "summary.json")) as f:
        return arm, seed, [r for r in log if "reward" in r], json.load(f)


def mean(xs):
    return sum(xs) / len(xs)


def svg(curves: dict, key: str, title: str, x0: int, y0: int, w=420, h=220) -> str:
    """One panel: a polyline per arm of the per-step mean over seeds."""
    ymax = max(max(c) for c in curves.values()) * 1.1 or 1.0
    n = max(len(c) for c in curves.values())
    px = lambda i: x0 + 40 + (w - 50) * i / max(1, n - 1)
    py = lambda v: y0 + h - 25 - (h - 45) * v / ymax
    out = [f'<text x="{x0 + w / 2}" y="{y0 + 14}" text-anchor="middle" font-size="13">{title}</text>',
           f'<line x1="{x0 + 40}" y1="{py(0)}" x2="{x0 + w - 10}" y2="{py(0)}" stroke="black"/>',
           f'<line x1="{x0 + 40}" y1="{py(0)}" x2="{x0 + 40}" y2="{py(ymax)}" stroke="black"/>',
           f'<text x="{x0 + 36}" y="{py(ymax) + 4}" text-anchor="end" font-size="10">{ymax:.2f}</text>',
           f'<text x="{x0 + 36}" y="{py(0) + 4}" text-anchor="end" font-size="10">0</text>',
           f'<text x="{x0 + w / 2}" y="{y0 + h - 5}" text-anchor="middle" font-size="10">'
           f'RL step (1..{n})</text>']
    for arm, c in curves.items():
        pts = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(c))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS[arm]}" stroke-width="2"/>')
    return "\n".join(out)


def main():
    ours = ("--out_dir=", "--jobs=", "--seeds=")  # this script's flags; the others go to train_igpo.py
    args = [a for a in sys.argv[1:] if not a.startswith(ours)]
    opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith(ours))
    out_dir = opts.get("out_dir", "out/compare")
    jobs, seeds = int(opts.get("jobs", 2)), int(opts.get("seeds", 3))
    os.makedirs(out_dir, exist_ok=True)
    todo = [(arm, s) for arm in ARMS for s in range(1, seeds + 1)]
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(lambda a: run(*a, args, out_dir), todo))
    rows, reward, wrong = [], {}, {}
    for arm in ARMS:
        runs = [r for r in results if r[0] == arm]
        steps = min(len(r[2]) for r in runs)
        reward[arm] = [mean([r[2][i]["reward"] for r in runs]) for i in range(steps)]
        wrong[arm] = [mean([r[2][i]["all_wrong"] for r in runs]) for i in range(steps)]
        acc = [r[3]["final_accuracy"] for r in runs]
        start, per_seed = mean([r[3]["start_accuracy"] for r in runs]), ", ".join(f"{a:.3f}" for a in acc)
        all_wrong = mean([r[3]["mean_all_wrong"] for r in runs])
        all_wrong_after = mean([r[3]["mean_all_wrong_after"] for r in runs])
        rows.append(f"| {arm} | {start:.3f} | {mean(acc):.3f} ({per_seed}) | {all_wrong:.3f} | "
                    f"{all_wrong_after:.3f} | {mean(reward[arm][-5:]):.3f} |")
    header = ("| arm | held-out acc. at start | final held-out acc. (per seed) | all-wrong groups | "
              "all-wrong after inpainting/resampling | reward, last 5 steps |")
    table = header + "\n|---|---|---|---|---|---|\n" + "\n".join(rows)
    extra = " ".join(args) or "(none)"
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(f"{seeds} seeds per arm, means over seeds; extra args: {extra}\n\n{table}\n")
    legend = "".join(f'<text x="{20 + 150 * i}" y="262" fill="{COLORS[a]}" font-size="12">&#9632; {a}</text>'
                     for i, a in enumerate(ARMS))
    with open(os.path.join(out_dir, "curves.svg"), "w") as f:
        f.write('<svg xmlns="http://www.w3.org/2000/svg" width="860" height="270" font-family="sans-serif">\n'
                '<rect width="100%" height="100%" fill="white"/>\n'
                + svg(reward, "reward", "mean reward of the rollouts", 0, 0) + "\n"
                + svg(wrong, "all_wrong", "fraction of all-wrong groups (before inpainting)", 430, 0) + "\n"
                + legend + "\n</svg>\n")
    print(table)


if __name__ == "__main__":
    main()
