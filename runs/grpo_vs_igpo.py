"""
The paper's experiment in miniature: GRPO, sample-matched resampling and IGPO (with its two ablations)
from the same SFT checkpoint, 3 seeds each, on the toy task (RL prompts half easy, half hard; the table
and the curves report the hard ones).

    python runs/grpo_vs_igpo.py --init_from=out/sft --out_dir=out/study --jobs=2
    python runs/grpo_vs_igpo.py --init_from=out/sft_s{seed} ...   # each seed from its own SFT run
    python runs/grpo_vs_igpo.py --arms=grpo,igpo --estimator=coupled ...   # other flags: every run's

Arms (every one is train_igpo.py with a few flags; all other settings are the command line's):
    grpo       plain GRPO (--inpaint=False): G rollouts per prompt, nothing else
    resample   the paper's sample-matched baseline: an all-wrong group gets G more rollouts without
               hints (eta = 0) and correct ones replace wrong ones, the same rollout budget as IGPO
    igpo       IGPO, paper defaults: partial hints (eta ~ U[0.2, 0.6]), entropy filter keeps 20%
    full       full inpainting: the whole trace pinned (eta = 1)
    no_filter  IGPO without the entropy filter: every hint token in the loss (keep 1.0)

Runs `jobs` trainings at a time (one thread each: the 15 runs of the tiny settings take 23 minutes on 2
cores); an interrupted study started again resumes every unfinished arm from its last checkpoint
(train_igpo.py --resume) and skips the finished ones. Writes out_dir/results.md (the table) and
out_dir/curves.svg (per-arm means over seeds, runs/plot.py).
"""
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot  # noqa: E402

ARMS = {
    "grpo": ["--inpaint=False"],
    "resample": ["--eta_low=0", "--eta_high=0"],
    "igpo": [],
    "full": ["--eta_low=1", "--eta_high=1"],
    "no_filter": ["--entropy_keep=1.0"],
}
OWN = ("--out_dir=", "--jobs=", "--seeds=", "--arms=", "--init_from=")  # this script's flags
HARD, EASY = "hard", "easy"  # the toy's kinds: eval rows carry eval_by_kind[HARD], eval_by_kind[EASY]


def train(arm: str, seed: int, init_from: str, args: list, out_dir: str) -> str:
    """One arm and seed, resumed from its checkpoint if an earlier study was interrupted."""
    d = os.path.join(out_dir, f"{arm}_s{seed}")
    if os.path.isfile(os.path.join(d, "summary.json")):
        return d
    resume = ["--resume=True"] if os.path.isfile(os.path.join(d, "meta.json")) else []
    cmd = [sys.executable, "train_igpo.py", f"--out_dir={d}", f"--seed={seed}",
           f"--init_from={init_from.format(seed=seed)}"] + args + ARMS[arm] + resume
    env = dict(os.environ, OMP_NUM_THREADS="1")  # two trainings on two cores
    with open(f"{d}.log", "a") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, env=env)
    return d


def stats(xs: list) -> str:
    """mean +- sample std (n-1) over seeds."""
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return f"{m:.3f} ± {sd:.3f}"


def kind_acc(row: dict, kind: str = HARD, sampled: bool = False) -> float:
    """A kind's greedy accuracy, or its sampled one (avg@k: train_igpo.py --eval_k), from an eval row."""
    if sampled:
        return row.get("eval_sampled_by_kind", {}).get(kind, float("nan"))
    return row.get("eval_by_kind", {}).get(kind, row["eval_accuracy"])


def mean_rows(runs: list[list[dict]]) -> list[dict]:
    """The per-step mean over seeds of every numeric field (steps all runs have), eval rows apart."""
    out = []
    for kind in ("reward", "eval_accuracy"):
        per_run = [[r for r in rows if kind in r] for rows in runs]
        for group in zip(*per_run):
            keys = [k for k, v in group[0].items() if isinstance(v, (int, float)) and k != "step"]
            row = {"step": group[0]["step"], **{k: sum(r[k] for r in group) / len(group) for k in keys}}
            if kind == "eval_accuracy":
                for key, sampled in (("eval_by_kind", False), ("eval_sampled_by_kind", True)):
                    row[key] = {k: sum(kind_acc(r, k, sampled) for r in group) / len(group)
                                for k in (HARD, EASY)}
            out.append(row)
    return out


def table(results: dict) -> str:
    """Per arm: hard accuracy sampled (avg@k) and greedy, start -> end over seeds (and each seed's end), easy
    greedy, the all-wrong share of the first 5 rounds and of all of them (after inpainting in brackets), and
    the rollouts sampled (per round; in all)."""
    head = ("| arm | hard, sampled: start -> end | hard, sampled: end per seed | "
            "hard, greedy: start -> end | easy, greedy: start -> end | all-wrong: first 5 rounds (after) | "
            "all rounds (after) | rollouts / round (in all) |")
    lines = [head, "|" + "---|" * 8]
    for arm, runs in results.items():
        evals = [[r for r in rows if "eval_accuracy" in r] for rows in runs]
        steps = [[r for r in rows if "reward" in r] for rows in runs]
        acc = lambda i, kind=HARD, sampled=False: [kind_acc(e[i], kind, sampled) for e in evals]  # noqa: E731
        per = lambda key, n=None: sum(sum(r.get(key, 0.0) for r in s[:n]) / max(1, len(s[:n]))  # noqa: E731
                                      for s in steps) / len(steps)
        total = sum(sum(r.get("rollouts", 0) for r in s) for s in steps) / len(steps)
        lines.append(" | ".join([
            f"| {arm}", f"{stats(acc(0, sampled=True))} -> {stats(acc(-1, sampled=True))}",
            ", ".join(f"{x:.3f}" for x in acc(-1, sampled=True)), f"{stats(acc(0))} -> {stats(acc(-1))}",
            f"{stats(acc(0, EASY))} -> {stats(acc(-1, EASY))}",
            f"{per('all_wrong', 5):.2f} ({per('all_wrong_after', 5):.2f})",
            f"{per('all_wrong'):.2f} ({per('all_wrong_after'):.2f})",
            f"{per('rollouts'):.0f} ({total:.0f}) |"]))
    return "\n".join(lines)


def main(argv: list[str]):
    opts = dict(a[2:].split("=", 1) for a in argv if a.startswith(OWN))
    args = [a for a in argv if not a.startswith(OWN)]
    out_dir, jobs = opts.get("out_dir", "out/study"), int(opts.get("jobs", 2))
    seeds = [int(s) for s in opts.get("seeds", "1337,1,2").split(",")]
    arms = opts.get("arms", ",".join(ARMS)).split(",")
    if unknown := set(arms) - set(ARMS):
        raise SystemExit(f"unknown arms {sorted(unknown)}; known: {', '.join(ARMS)}")
    init_from = opts.get("init_from", "out/sft")
    os.makedirs(out_dir, exist_ok=True)
    todo = [(arm, seed) for arm in arms for seed in seeds]
    with ThreadPoolExecutor(jobs) as pool:  # threads only wait on the training processes
        dirs = list(pool.map(lambda a: train(*a, init_from, args, out_dir), todo))
    results = {arm: [] for arm in arms}
    for (arm, _), d in zip(todo, dirs):
        results[arm].append(plot.read_log(d))
    text = table(results)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(f"seeds {seeds}, init_from {init_from}; train_igpo.py flags: {' '.join(args) or '(none)'}\n\n"
                f"{text}\n")
    with open(os.path.join(out_dir, "curves.svg"), "w") as f:
        f.write(plot.svg({arm: mean_rows(runs) for arm, runs in results.items()}))
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
