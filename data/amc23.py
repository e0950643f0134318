"""
AMC23 (QwenLM/Qwen2.5-Math evaluation/data/amc23): the 40 AMC 12 2023 problems (12A and 12B), test
only; they are also the 2023 half of the 83-problem "amc" task. Float answers become integer strings,
and there are no solutions, so trace and hint are ''. One instance as load() returns it:

    {"question": "Cities $A$ and $B$ are $45$ miles apart. Alicia lives in $A$ and Beth lives in $B$. Alicia
                  bikes towards $B$ at 18 miles per hour. ... How many miles from City $A$ will they be when
                  they meet?",
     "trace": "", "answer": "27", "id": 0}
"""
from data.files import correct, hint, prompt, reward, target  # noqa: F401 (the task interface)
from data.files import need, number, records

FILES = {"test": "amc23_test.jsonl"}


def load(split: str, path=None) -> list[dict]:
    return [{"question": need(row, "problem", where), "trace": "",
             "answer": number(need(row, "answer", where, (int, float))), "id": row.get("id", where)}
            for where, row in records(FILES, split, path)]
