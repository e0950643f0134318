"""
toy: chained arithmetic, synthetic, seeded and download-free. The teaching task of the tiny preset.

    question: "37+5-8+3"                        (level = number of steps = 3)
    trace:    "37+5=42\n-8=34\n+3=37"           one line per step, each line continues from the
    answer:   "37"                              previous result, and the last result is the answer

Every result is written exactly once. A masked-diffusion model trained on a trace that repeats a
result (say a final "answer: 37" line after "+3=37") learns to copy the visible copy instead of
computing it, so the answer is the last step's result and nothing else.

Values stay in [0, 99]; each step adds or subtracts one digit (carries and borrows are the hard
part). Problems are split between train and test by a hash of the question, so test problems are
never trained on.
"""
import random
import re
import zlib

MAX_VALUE = 99      # every intermediate value stays in [0, MAX_VALUE]
MAX_OPERAND = 9     # each step adds or subtracts 1..MAX_OPERAND
TEST_EVERY = 10     # a question whose crc32 % TEST_EVERY == 0 belongs to the test split


def make(rng: random.Random, level: int) -> dict:
    value = rng.randint(10, MAX_VALUE)
    question, lines = str(value), []
    for step in range(level):
        b = rng.randint(1, MAX_OPERAND)
        op = rng.choice("+-")
        if not 0 <= (value + b if op == "+" else value - b) <= MAX_VALUE:
            op = "-" if op == "+" else "+"  # flip the operation to stay in range
        new = value + b if op == "+" else value - b
        lines.append(f"{value if step == 0 else ''}{op}{b}={new}")
        question += f"{op}{b}"
        value = new
    return {"question": question, "trace": "\n".join(lines), "answer": str(value), "level": level}


def load(split: str = "train", path=None, n: int | None = None, levels=(1, 2, 3, 4), seed: int = 0) -> list[dict]:
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
    """The number after the last '=' of the last non-empty line, or None."""
    lines = [l for l in text.strip().split("\n") if l.strip()]
    m = re.search(r"=\s*(-?\d+)\s*$", lines[-1]) if lines else None
    return m.group(1) if m else None


def correct(text: str, example: dict) -> bool:
    got = extract(text)
    return got is not None and int(got) == int(example["answer"])


def reward(text: str, example: dict) -> float:
    return float(correct(text, example))


def hint(example: dict) -> str:
    """The trace without the final answer: the last line stops at its '='."""
    return example["trace"][: example["trace"].rindex("=") + 1]


def probes(example: dict) -> list[tuple[str, str]]:
    """(trace prefix up to a step's '=', that step's result): with everything after the prefix masked,
    predicting the result checks that the model computes each step rather than copying it."""
    out, done = [], ""
    for line in example["trace"].split("\n"):
        lhs, rhs = line.split("=")
        out.append((done + lhs + "=", rhs))
        done += line + "\n"
    return out
