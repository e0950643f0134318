"""
toy: chained arithmetic, synthetic, seeded and download-free. The teaching task of the tiny preset.

    question: "7+2-3+1......"   a start value and `level` steps (here 3), padded with dots to a fixed width
    trace:    "7\n9\n6\n7"       the start value, then the running value after each step, one per line
    answer:   "7"                the last line; a completion is right iff it is the whole trace (correct())

Two kinds of problems:
    easy   steps of 1..3 (levels 1-6), 3/4 of SFT's problems, each with its right trace
    hard   steps of 4..5 as well ("7+4-5+2"): levels 2-6, each step big with probability 1/2, at least two
           are. SFT's other 1/4 ("weak") are hard problems traced by a weak teacher: right on each big step
           with probability TEACHER_RIGHT = 1/2, else a slip (the operand applied as b - 2: "+4" adds 2), the
           later lines following the slipped value. The SFT model so holds the big steps as a latent skill:
           it samples a right hard trace now and then (pass@1 0.04-0.21, pass@8 0.17-0.68 at temperature 1
           over SFT seeds 1337, 1, 2), so many of GRPO's hard groups are all wrong and RL can reinforce
           what it sometimes gets right; a hint that reveals the running value after a big step turns what
           follows into easy steps.
How the hard kind got here (each measured on the tiny model; README, Results):
- Absent (SFT on easy problems only, the big steps never shown): every hard group all wrong, inpainting
  rescued about 30% of them, and no arm learned in 60 or 240 rounds (hard 0.000-0.004): the skill is out of
  reach of RL's small steps, and the one-token hints the entropy filter keeps seldom teach a big step.
- Less latent: a teacher right w.p. 0.2 (1/3 of SFT's problems) or 0.3 (1/4): SFT hard 0.000-0.001 greedy,
  pass@32 0.10 at 0.3, every hard group all wrong in RL, and hard stayed at 0.002-0.014 in every arm; easy
  fell to 0.65-0.91 after SFT (the weak traces cost the easy skill; the less right the teacher, the more).
- Seed lotteries, which two big steps and the weak teacher avoid: with one big step per hard problem, one SFT
  model of six got 36% of the "-4" problems right and the others none; with 2% of SFT's problems hard and
  right, seeds 1, 1337 and 2 solved 3%, 10% and 75% of the hard ones.

Design rules, each measured on the tiny model (0.9M parameters, a few minutes of CPU SFT):
- Every result is written exactly once. A masked-diffusion model trained on a trace that repeats a result
  (say "37+5=42\\n42-8=34", or a final "answer: 37" line) learns to copy the visible copy instead of
  computing it.
- Equal strides: the question spends two characters per step ("+2") and the trace two per line ("9\\n"),
  so line i and the step it applies sit at a fixed distance for every i, and each line is computed the
  same way from the line above it and its step. The start value is copied as the trace's first line for
  the same reason: line 1 is then computed like every other line. In an earlier two-digit version, 1000
  SFT steps reached 0.30 held-out without the start line (seed 1337) and 0.63 / 0.79 with it (seeds 1, 2).
- Small numbers: values in [0, 9], a step changes the value by at most 5. Each input then tells something
  about the result on its own (the new value is near the old one); with values up to 99 the units digit
  depends on both inputs jointly, and the 1M model stayed at chance for 600-2500 SFT steps.

Chaining is what makes it hard: a wrong value spoils every later line. Problems are split between train and
test by a hash of the question, so test problems are never trained on.
"""
import random
import re
import zlib

MAX_VALUE = 9       # every value stays in [0, MAX_VALUE]: one digit
MAX_OPERAND = 3     # an easy step adds or subtracts 1..MAX_OPERAND
BIG = (4, 5)        # a hard problem's big steps add or subtract 4 or 5
MIN_BIG = 2         # ... and it has at least two of them (so it has at least two steps)
MAX_LEVEL = 6       # the question is padded to the width of a MAX_LEVEL-step problem
KINDS = ("easy", "hard")
TEACHER_RIGHT = 0.5  # "weak": a hard problem whose trace comes from a teacher right on a big step w.p. this
SFT_KINDS = ("easy", "easy", "easy", "weak")  # SFT's data: 3/4 easy, 1/4 weak-teacher traces of hard ones
TEST_EVERY = 10     # a question whose crc32 % TEST_EVERY == 0 belongs to the test split


def make(rng: random.Random, level: int, kind: str = "easy") -> dict:
    hard = kind in ("hard", "weak")
    big = [hard and rng.random() < 0.5 for _ in range(level)]
    while hard and sum(big) < min(MIN_BIG, level):  # a hard problem has MIN_BIG big steps
        big[rng.choice([i for i, b in enumerate(big) if not b])] = True
    value = start = rng.randint(0, MAX_VALUE)
    ops, values = [], [str(start)]
    for is_big in big:
        b = rng.randint(*BIG) if is_big else rng.randint(1, MAX_OPERAND)
        op = rng.choice("+-")
        if not 0 <= (value + b if op == "+" else value - b) <= MAX_VALUE:
            op = "-" if op == "+" else "+"  # flip the operation to stay in range (b <= 5 always fits one way)
        value = value + b if op == "+" else value - b
        ops.append(f"{op}{b}")
        values.append(str(value))
    question = (str(start) + "".join(ops)).ljust(1 + 2 * MAX_LEVEL, ".")
    if kind == "weak":  # the weak teacher: a big step slips to b - 2 unless right; later lines follow it
        value, values = start, [str(start)]
        for o, is_big in zip(ops, big):
            b = int(o[1:]) - (2 if is_big and rng.random() >= TEACHER_RIGHT else 0)
            value = value + b if o[0] == "+" else value - b
            if not 0 <= value <= MAX_VALUE:
                return make(rng, level, kind)  # the slipped chain left [0, 9]: draw another problem
            values.append(str(value))
    return {"question": question, "trace": "\n".join(values), "answer": str(value), "level": level,
            "kind": kind}


def load(split: str = "train", path=None, n: int | None = None, levels=tuple(range(1, MAX_LEVEL + 1)),
         kinds: tuple = SFT_KINDS, seed: int = 0) -> list[dict]:
    """n problems (default 50000 train; 1000 test per kind) with levels drawn uniformly from `levels` (hard
    ones: those >= MIN_BIG, if any), all from one side of the hash split. Train: the `kinds` asked for (SFT:
    SFT_KINDS; RL: easy and hard); test: easy and hard."""
    if split not in ("train", "test"):
        raise ValueError(f"toy task: unknown split {split!r} (train, test)")
    if bad := set(kinds) - set(KINDS) - {"weak"}:
        raise ValueError(f"toy task: unknown kinds {sorted(bad)} (easy, hard, weak)")
    kinds = KINDS if split == "test" else kinds
    n = n or (50000 if split == "train" else 1000 * len(kinds))
    rng = random.Random(f"{split}-{seed}")
    out, hard_levels = [], [lv for lv in levels if lv >= MIN_BIG] or list(levels)
    while len(out) < n:
        kind = kinds[len(out) % len(kinds)]  # kinds alternate: equal shares
        ex = make(rng, rng.choice(hard_levels if kind in ("hard", "weak") else levels), kind)
        if (zlib.crc32(ex["question"].encode()) % TEST_EVERY == 0) == (split == "test"):
            out.append(ex)
    return out


def prompt(example: dict, kind: str = "train") -> str:
    return example["question"]


def target(example: dict) -> str:
    return example["trace"]


def extract(text: str):
    """The number on the last non-empty line, or None."""
    lines = [line for line in text.strip().split("\n") if line.strip()]
    m = re.fullmatch(r"\s*(-?\d+)\s*", lines[-1]) if lines else None
    return m.group(1) if m else None


def correct(text: str, example: dict) -> bool:
    """Right iff every line is: the running values, one per line, exactly the trace. The last value alone
    would count lucky guesses (one digit in ten; a wrong chain often lands on the answer): the SFT models
    got 2-19% of the one-big-step hard problems' last values right and 0-8% of their traces."""
    return [line.strip() for line in text.strip().split("\n")] == example["trace"].split("\n")


def reward(text: str, example: dict) -> float:
    return float(correct(text, example))


def hint(example: dict) -> str:
    """The whole trace. Its last line is the last step's result, as the last line of a GSM8K trace computes
    the answer; a completion is still right only if every line is."""
    return example["trace"]


def probes(example: dict) -> list[tuple[str, str]]:
    """(trace before line i, line i's value), from line 1 on (line 0 copies the question's start value):
    with everything after the prefix masked, predicting the value checks that the model computes each
    step rather than copying it."""
    lines = example["trace"].split("\n")
    return [("".join(v + "\n" for v in lines[:i]), lines[i]) for i in range(1, len(lines))]
