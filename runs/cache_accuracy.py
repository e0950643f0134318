"""
How far the KV-cache approximations move greedy held-out accuracy on the toy task: the exact sampler vs
prefix vs dual cache on the same problems, over several disjoint draws of the test split, with the number
of problems each mode gets right that the exact sampler gets wrong (gains) and the other way round (losses).

    python runs/cache_accuracy.py --ckpt=out/sft --draws=4              # 4 x 1000 problems, ~5 min on 2 cores
    python runs/cache_accuracy.py --ckpt=out/sft --draws=4 --refresh=4  # caches also refreshed mid-block
"""
import os
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import model as M  # noqa: E402
from common import parse_args, setup  # noqa: E402
from data import arith  # noqa: E402
from data.tokenizer import chat, decode, get_tokenizer  # noqa: E402
from eval import generate  # noqa: E402


@dataclass
class Config:
    ckpt: str = "out/sft"
    # test-split draws (seeds 0..draws-1) of 1000 problems each; seed 0 is eval.py's
    draws: int = 4
    gen_len: int = 24           # the toy evaluation settings of sft.py / train_igpo.py / eval.py
    block_len: int = 8
    steps: int = 24
    refresh: int = 0            # cached modes also refresh every k steps (sample.py; 1 = exact)


def main(argv=None):
    cfg = parse_args(Config(), argv)
    rt = setup("cpu")
    model = M.load(cfg.ckpt).eval()
    enc = get_tokenizer(model.config.tokenizer)
    totals = {mode: [0, 0, 0] for mode in ("none", "prefix", "dual")}  # correct, gains, losses
    n = 0
    for seed in range(cfg.draws):
        exs = arith.load("test", seed=seed)
        prompts = [chat(enc, arith.prompt(ex)) for ex in exs]
        ok = {}  # mode -> whether each problem is solved
        for mode in totals:
            comps = generate(model, rt, enc, prompts, cfg.gen_len, cfg.block_len, cfg.steps, cache=mode,
                             refresh=cfg.refresh)
            ok[mode] = [arith.correct(decode(enc, c), ex) for c, ex in zip(comps, exs)]
        for mode, t in totals.items():
            t[0] += sum(ok[mode])
            t[1] += sum(a and not b for a, b in zip(ok[mode], ok["none"]))
            t[2] += sum(b and not a for a, b in zip(ok[mode], ok["none"]))
        n += len(exs)
        print(f"draw {seed}: " + " | ".join(f"{m} {sum(v) / len(v):.3f}" for m, v in ok.items()), flush=True)
    print(f"\n{cfg.ckpt}: {n} held-out problems\n"
          f"{'mode':<8} {'accuracy':>8} {'vs exact':>9} {'gains':>6} {'losses':>7}")
    for mode, (c, g, l) in totals.items():
        print(f"{mode:<8} {c / n:>8.3f} {100 * (c - totals['none'][0]) / n:>+9.1f} {g:>6} {l:>7}")

if __name__ == "__main__":
    main()
