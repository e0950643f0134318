"""
Hint-only canvases: the share of GSM8K train problems whose IGPO hint canvas alone, the model writing
nothing (the pinned tokens decoded in order, free positions dropped), is already graded correct, by our
reward (data/grader.reward) and by the official one (grader.official_reward). That share is what a
rollout can earn from the hint alone (answer leakage, IGPO.md B.10.2).

    python runs/hint_only.py                                      # OLMo 2's dolma2 (cl100k) tokenizer
    python runs/hint_only.py --tokenizer=PATH/LLaDA-8B-Instruct   # LLaDA's own, where it is at hand

Hint texts, all from GSM8K's train solutions (calculator annotations removed, as data/gsm8k.py loads them):
  ours      task.hint: "<reasoning>\n" + the trace, no answer line (the default)
  official  gsm8k.official_hint: "<reasoning>\n" + trace + "\n#### X\nThe answer is: X", the shape of a
            MetaMathQA GSM_AnsAug response, as the official code's hint is (--hint_with_answer)
  target    our SFT target, "...</reasoning>\n<answer>\n\boxed{X}\n</answer>" (what --hint_with_answer
            used to pin)
Placements: paper (the defaults) and official (--hint_stretch --hint_reveal_last --hint_rechunk). One canvas
per problem and placement, eta ~ U[eta_low, eta_high], 5..10-token chunks, gen_len 256 (the headline run).
LLaDA's tokenizer.json is not kept offline; dolma2's cl100k vocabulary cuts numbers into 1-3 digits and
words much as Llama-3-style tokenizers do, so the shares are close to, not exactly, LLaDA's.
"""
import os
import random
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train_igpo as T  # noqa: E402
from common import parse_args, stream_seed  # noqa: E402
from data import files, grader, gsm8k  # noqa: E402
from data.tokenizer import get_tokenizer  # noqa: E402


@dataclass
class Config:
    tokenizer: str = str(files.SHARED / "tokenizers" / "dolma2")  # a folder with a tokenizer.json
    gen_len: int = 256
    eta_low: float = 0.2
    eta_high: float = 0.6
    limit: int = 0              # only the first N problems (0 = all 7473)
    seed: int = 0


TEXTS = {"ours": gsm8k.hint, "official": gsm8k.official_hint, "target": gsm8k.target}
PLACEMENTS = {"paper": {}, "official": dict(hint_stretch=True, hint_reveal_last=True, hint_rechunk=True)}


def hint_alone(enc, text: str, cfg: T.Config, rng: random.Random, gen_len: int, eta: float) -> str:
    """The text of one hint canvas with nothing written in it: its pinned tokens, in order."""
    trace = enc.encode_ordinary(text)
    chunks = T.hint_chunks(min(len(trace), T.hint_room(gen_len, cfg)), rng, cfg.chunk_min, cfg.chunk_max)
    pinned = T.hint_canvas(trace, chunks, gen_len, eta, rng, cfg, mask_id=-1)
    return enc.decode([t for t in pinned.tolist() if t != -1])


def shares(rows: list[dict], enc, cfg: Config) -> dict:
    """(text, placement) -> (share correct by our reward, by the official reward)."""
    out = {}
    for (text, make), (place, flags) in ((t, p) for t in TEXTS.items() for p in PLACEMENTS.items()):
        tc, ours, official = T.Config(**flags), 0, 0
        for i, ex in enumerate(rows):
            rng = random.Random(stream_seed(cfg.seed, i, -1, f"hint_only/{text}/{place}"))
            alone = hint_alone(enc, make(ex), tc, rng, cfg.gen_len, rng.uniform(cfg.eta_low, cfg.eta_high))
            ours += grader.correct(alone, ex["answer"])
            official += grader.official_correct(alone, ex["answer"])
        out[text, place] = (ours / len(rows), official / len(rows))
    return out


def main(argv=None):
    cfg = parse_args(Config(), argv)
    enc = get_tokenizer(cfg.tokenizer)
    rows = gsm8k.load("train")[:cfg.limit or None]
    print(f"GSM8K train, {len(rows)} problems | tokenizer {cfg.tokenizer} | gen_len {cfg.gen_len}")
    print("| hint text | placement | correct by our reward | correct by the official reward |")
    print("|---|---|---|---|")
    for (text, place), (ours, official) in shares(rows, enc, cfg).items():
        print(f"| {text} | {place} | {100 * ours:.1f}% | {100 * official:.1f}% |")


if __name__ == "__main__":
    main()
