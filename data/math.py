r"""
MATH (Hendrycks et al. 2021): competition problems in 7 subjects, levels 1-5. Split "train" is the
official MATH train set (math_train.jsonl, 7500 problems, 7498 loaded: two box nothing); split "test" is
MATH500 (math500_test.jsonl), the 500-problem subset of MATH test from "Let's Verify Step by Step".
One instance as load() returns it:

    {"question": "Evaluate $\log_264$.", "trace": "We have $2^6=64$, so $\log_2 64 = \boxed{6}$.",
     "answer": "6", "id": "test/algebra/1255.json"}

The answer is MATH500's own "answer" field; MATH train has none, so it is the content of the solution's
last \boxed{} (the grader's rule; 23 of the 7500 box two or more different things, mostly the parts of
a multi-part answer, and then this keeps only the last part). hint() cuts every \boxed{...} out of the
trace, with a "$...$" wrapping it alone: the hint above is "We have $2^6=64$, so $\log_2 64 = $.".
"""
from data import grader
from data.files import need, records
from data.files import correct, hint, official_hint, prompt, reward, target  # noqa: F401 (task interface)

FILES = {"train": "math_train.jsonl", "test": "math500_test.jsonl"}


def load(split: str, path=None) -> list[dict]:
    rows = []
    for where, row in records(FILES, split, path):
        solution = need(row, "solution", where)
        if split == "test":
            answer = need(row, "answer", where)
        elif (found := grader.boxes(solution)):
            answer = found[-1][2].strip()
        else:
            raise ValueError(f"{where}: field 'solution' has no \\boxed{{}} answer")
        if not answer:  # MATH's own bug: train/number_theory/7115 and 7117 box nothing, so they are skipped
            continue
        rows.append({"question": need(row, "problem", where), "trace": solution, "answer": answer,
                     "id": row.get("unique_id", where)})
    return rows
