"""
toy: chained arithmetic, synthetic, seeded and download-free. The teaching task of the tiny preset.

    question: "07 +2 -3 +1........."   a start value and `level` steps (here level = 3), fixed width
    trace:    "09\n06\n07"                  one line per step: the running value after each step
    answer:   "7"                            the last line

Two design rules, both measured on the tiny model:
- Every result is written exactly once. A masked-diffusion model trained on a trace that repeats a result
  (say "37+5=42\n42-8=34", or a final "answer: 37" line) learns to copy the visible copy instead of
  computing it.
- Fixed-width fields: values are two digits, steps three characters, and the question is padded with
  dots to a fixed width, so step i always reads its operation and the previous value at the same
  relative positions. With free-form text ("37+5=42\n-8=34") the model must first learn to search the
  question for the i-th operation; a 1M-parameter model did not manage that in a CPU budget (about 1%
  held-out accuracy after 600 SFT steps), while positional copying is learnt in about 100 steps.
- Small numbers: values in [0, 9], steps of 1..3. Each input then tells something about the result on its
  own (the new value is within 3 of the old one); with values in [0, 99] (or sums mod 10) the units digit
  depends on both inputs jointly, and the 1M model stayed at chance for 600-2500 steps. Measured after 800
  SFT steps: values <= 99: 7% held-out, <= 19: 33%, <= 9: 54% (one step: 100%).

Chaining is what makes it hard: a wrong value spoils every later line. Problems are split between train and
test by a hash of the question, so test problems are never trained on.
"""
import random
import re
import zlib

MAX_VALUE = 9       # every value stays in [0, MAX_VALUE], written with two digits (fixed width)
MAX_OPERAND = 3     # each step adds or subtracts 1..MAX_OPERAND
MAX_LEVEL = 6       # the question is padded to the width of a MAX_LEVEL-step problem
TEST_EVERY = 10     # a question whose crc32 % TEST_EVERY == 0 belongs to the test split


def make(rng: random.Random, level: int) -> dict:
    value = rng.randint(0, MAX_VALUE)
    ops, values = [], []
    for _ in range(level):
        b = rng.randint(1, MAX_OPERAND)
        op = rng.choice("+-")
        if not 0 <= (value + b if op == "+" else value - b) <= MAX_VALUE:
            op = "-" if op == "+" else "+"  # flip the operation to stay in range
        value = value + b if op == "+" else value - b
        ops.append(f"{op}{b}")
        values.append(f"{value:02d}")
    question = " ".join([f"{int(values[0]) - int(ops[0]):02d}"] + ops)
    question = question.ljust(2 + 3 * MAX_LEVEL, ".")
    return {"question": question, "trace": "\n".join(values), "answer": str(value), "level": level}


def load(split: str = "train", path=None, n: int | None = None, levels=tuple(range(1, MAX_LEVEL + 1)),
         seed: int = 0) -> list[dict]:
    """n problems (default 50000 train, 1000 test) with levels drawn uniformly from `levels`, all from
    one side of the hash split."""
    if split not in ("train", "test"):
        raise ValueError(f"toy task: unknown split {split!r} (train, test)")
    n = n or (50000 if split == "train" else 1000)
    rng = random.Random(f"{split}-{seed}")
    out = []
    while len(out) < n:
        ex = make(rng, rng.choice(levels))
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
    got = extract(text)
    return got is not None and int(got) == int(example["answer"])


def reward(text: str, example: dict) -> float:
    return float(correct(text, example))


def hint(example: dict) -> str:
    """The trace without the final answer: every line but the last."""
    return example["trace"][: len(example["trace"]) - len(example["trace"].split("\n")[-1])]


def probes(example: dict) -> list[tuple[str, str]]:
    """(trace before step i, step i's value): with everything after the prefix masked, predicting the
    value checks that the model computes each step rather than copying it."""
    lines = example["trace"].split("\n")
    return [("".join(v + "\n" for v in lines[:i]), lines[i]) for i in range(len(lines))]
