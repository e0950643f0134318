"""
GSM8K (Cobbe et al. 2021, openai/grade-school-math): grade-school word problems, train 7473 / test 1319.
One instance as load() returns it (the raw solution ends in "#### 72" and carries <<48/2=24>>-style
calculator annotations; both are dropped from the trace, and the answer loses its thousands commas):

    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips
                  in May. How many clips did Natalia sell altogether in April and May?",
     "trace": "Natalia sold 48/2 = 24 clips in May.\\nNatalia sold 48+24 = 72 clips altogether in April
               and May.",
     "answer": "72", "id": "gsm8k/train/0"}

hint() gives the whole trace (it only cuts boxes, and GSM8K has none): the "#### X" line is already gone,
though the last step still computes the number, as any complete trace must. official_hint() is the trace as
a MetaMathQA GSM_AnsAug response would give it to the official code: "<reasoning>\n" + trace +
"\n#### X\nThe answer is: X" (the answer twice, no box).
"""
import re

from data.files import correct, hint, need, prompt, records, reward, target  # noqa: F401 (the task interface)

FILES = {"train": "gsm8k_train.jsonl", "test": "gsm8k_test.jsonl"}


def load(split: str, path=None) -> list[dict]:
    rows = []
    for i, (where, row) in enumerate(records(FILES, split, path)):
        solution = need(row, "answer", where)
        if "####" not in solution:
            raise ValueError(f"{where}: field 'answer' has no final '#### X' line")
        trace, answer = solution.rsplit("####", 1)
        # calculator annotations: "= <<48/2=24>>24" -> "= 24"
        trace = re.sub(r"<<[^<>]*>>", "", trace).strip()
        rows.append({"question": need(row, "question", where), "trace": trace,
                     "answer": answer.strip().replace(",", ""), "id": f"gsm8k/{split}/{i}"})
    return rows


def official_hint(example: dict) -> str:
    a = example["answer"]
    return f"<reasoning>\n{example['trace']}\n#### {a}\nThe answer is: {a}"
