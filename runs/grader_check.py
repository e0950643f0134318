r"""
The grader on the real benchmark files (../shared/data, found by the tasks' load functions), next to the
official IGPO reward (data.grader.official_correct):

(a) self-consistency: every reference target, task.target(ex), must grade right against its own answer.
    The official reward misses a few: it reads the first box, and some reference solutions box something
    before the answer (MATH intermediate results, AIME24's \boxed{\textbf{(601) }}).
(b) the kinds of output a model writes (those LLaDA-8B-Instruct writes, and those where d1's evaluation
    parser and ours disagree), each built from the real reference answers: how many are judged right.
(c) wrong outputs that carry the reference's number (x^{n}, n\pi, "more than n"): ours must judge none
    right, where a "first number in the box" parser such as d1's judges most of them right.

    python runs/grader_check.py        # about 25 s on 2 cores; exits 1 if (a) or (c) fails for ours

A kind that needs a number (a unit after it, thousands separators, another way to write it) is built only
for the answers that are plain numbers (data.grader.to_number), so its n is smaller.
"""
import os
import sys
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data import get_task, grader  # noqa: E402

SPLITS = [("gsm8k", "train"), ("gsm8k", "test"), ("math", "train"), ("math", "test"), ("amc", "test"),
          ("amc23", "test"), ("aime24", "test")]
UNITS = ["hours", "ml", "miles", "dollars", "apples", "cm"]  # cycled over the problems
WORK = "Working it out step by step: 2 + 3 = 5 and 5 * 4 = 20."


def answered(inside: str, more: str = "") -> str:
    """A response in the format the prompt asks for, `inside` the answer tags, `more` after the reasoning."""
    return f"<reasoning>\n{WORK}{more}\n</reasoning>\n<answer>\n{inside}\n</answer>"


def other_form(v: Fraction, a: str) -> str | None:
    r"""The same value written another way: 72 -> "72.00", 0.25 -> "\frac{1}{4}", \frac{3}{4} -> "0.75"."""
    if v.denominator == 1:
        return f"{v}.00"
    sign, v = ("-" if v < 0 else ""), abs(v)
    if "frac" not in a and "/" not in a:  # a decimal: its fraction
        return f"{sign}\\frac{{{v.numerator}}}{{{v.denominator}}}"
    d = v.denominator
    while d % 2 == 0 or d % 5 == 0:  # a fraction: its decimal, when that ends
        d //= 2 if d % 2 == 0 else 5
    if d != 1:
        return None
    digits = 0
    while (v * 10 ** digits).denominator != 1:
        digits += 1
    whole, part = divmod(int(v * 10 ** digits), 10 ** digits)  # exact: no float rounding
    return f"{sign}{whole}.{part:0{digits}d}"


def kinds(a: str, i: int = 0) -> dict[str, str | None]:
    """Each kind of output for the reference answer `a` (None where the kind needs a number `a` is not)."""
    v = grader.to_number(grader.normalize(a))
    num = v is not None
    unit = UNITS[i % len(UNITS)]
    wrong = "1" if num and v == 0 else "0"
    return {
        "boxed answer (the reference format)": answered(f"\\boxed{{{a}}}"),
        "answer tags, no box": answered(a),
        "a sentence in the answer tags": answered(f"The total is {a} {unit}.") if num else None,
        "unit word in the box": answered(f"\\boxed{{{a} {unit}}}") if num else None,
        "\\text{ unit} in the box": answered(f"\\boxed{{{a}\\text{{ {unit}}}}}"),
        "empty box, then the answer": answered(f"\\boxed{{}} {a}"),
        "nested box": answered(f"\\boxed{{\\boxed{{{a}}}}}"),
        "box never closed": answered(f"\\boxed{{{a}"),
        "boxed{} without backslash": answered(f"boxed{{{a}}}"),
        "thousands separators": answered(f"\\boxed{{{int(v):,}}}") if num and v.denominator == 1
        and abs(v) >= 1000 else None,
        "negative answer": answered(f"\\boxed{{{a}}}") if num and v < 0 else None,
        "same value, other form": answered(f"\\boxed{{{other_form(v, a)}}}") if num and other_form(v, a)
        else None,
        "box split by newlines": answered(f"\\boxed{{\n{a}\n}}"),
        "first box wrong, last right": answered(f"\\boxed{{{a}}}", f" So \\boxed{{{wrong}}}. No, again:"),
        "first box right, last wrong": answered(f"\\boxed{{{wrong}}}", f" So \\boxed{{{a}}}. No, again:"),
    }


def wrong_kinds(a: str) -> dict[str, str | None]:
    """Wrong answers that carry the reference's number n: a grader that reads "the number in the box" takes
    them for right (d1 reads \boxed{x^{2}} as 2). Built for positive integer answers, where each is wrong."""
    v = grader.to_number(grader.normalize(a))
    if v is None or v.denominator != 1 or v <= 0:
        return dict.fromkeys(WRONG)
    return {name: answered(f"\\boxed{{{box.format(n=v, m=v + 1)}}}") for name, box in WRONG.items()}


WRONG = {  # name -> box content, n the reference's number
    "x^{n}": "x^{{{n}}}", "n x": "{n} x", "nx": "{n}x", "n\\pi": "{n}\\pi", "n\\sqrt{2}": "{n}\\sqrt{{2}}",
    "n million": "{n} million", "n squared": "{n} squared", "n dozen": "{n} dozen",
    "more than n": "more than {n}", "at least n apples": "at least {n} apples", "n, n+1": "{n}, {m}",
    "n + 1 apples": "{n} + 1 apples", "n \\frac{1}{2} (mixed)": "{n} \\frac{{1}}{{2}}",
}


def cells(counts: list[int]) -> str:
    ours, off, n = counts
    return f" {ours:>6} {off:>6} {n:>6}" if n else f" {'-':>6} {'-':>6} {0:>6}"


def main():
    loaded = {(name, split): get_task(name).load(split) for name, split in SPLITS}
    tasks = list(dict.fromkeys(name for name, _ in SPLITS))
    ok = True

    print("(a) reference targets graded against their own answers: ours, official")
    for (name, split), rows in loaded.items():
        task = get_task(name)
        ours = sum(task.correct(task.target(ex), ex) for ex in rows)
        off = sum(grader.official_correct(task.target(ex), ex["answer"]) for ex in rows)
        ok &= ours == len(rows)
        print(f"  {name:<7} {split:<6} {ours:>5} {off:>5} / {len(rows)}")

    header = (f"{'':<37}" + "".join(f"{t:^21}" for t in tasks) + f"\n{'kind of output':<37}"
              + "".join(f" {'ours':>6} {'offic.':>6} {'of n':>6}" for _ in tasks))
    for title, build, names in [("(b) outputs built from the reference answers: how many judged right",
                                 kinds, list(kinds("1"))),
                                ("(c) wrong outputs with the reference's number: judged right (must be 0)",
                                 lambda a, i: wrong_kinds(a), list(WRONG))]:
        counts = {(k, t): [0, 0, 0] for k in names for t in tasks}  # ours, official, n
        for (name, _), rows in loaded.items():
            for i, ex in enumerate(rows):
                for k, text in build(ex["answer"], i).items():
                    if text is not None:
                        c = counts[k, name]
                        c[0] += grader.correct(text, ex["answer"])
                        c[1] += grader.official_correct(text, ex["answer"])
                        c[2] += 1
        print(f"\n{title}\n{header}")
        for k in names:
            print(f"{k:<37}" + "".join(cells(counts[k, t]) for t in tasks))
        if build is not kinds:
            ok &= all(counts[k, t][0] == 0 for k in names for t in tasks)
    print("\nall checks passed" if ok else "\nFAILED: see (a) and (c) above")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
