r"""
AIME 2024 (QwenLM/Qwen2.5-Math evaluation/data/aime24): the 30 problems of AIME 2024 I and II, test only.
Answers are integer strings from 000 to 999 as the file writes them ("025"; the grader compares numbers
exactly, so "25" is right too). The trace is the AoPS solution in the file; hint() cuts its boxes
(\boxed{204}, often \boxed{\textbf{(113) }}). One instance as load() returns it:

    {"question": "Every morning Aya goes for a $9$-kilometer-long walk and stops at a coffee shop
                  afterwards. ... Find the number of minutes the walk takes her, including the $t$ minutes
                  spent in the coffee shop.",
     "trace": "$\frac{9}{s} + t = 4$ in hours and $\frac{9}{s+2} + t = 2.4$ in hours. ...",
     "answer": "204", "id": 60}
"""
from data.files import correct, hint, need, prompt, records, reward, target  # noqa: F401 (the task interface)

FILES = {"test": "aime24_test.jsonl"}


def load(split: str, path=None) -> list[dict]:
    return [{"question": need(row, "problem", where), "trace": need(row, "solution", where),
             "answer": need(row, "answer", where), "id": row.get("id", where)}
            for where, row in records(FILES, split, path)]
