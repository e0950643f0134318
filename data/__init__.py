"""
Tasks. Every task is a module in this package with the same small interface:

    load(split, path=None) -> list[dict]   rows with at least
        "question": the user's question (no system prompt, no chat template)
        "trace":    the ground-truth reasoning text ('' when the dataset has none)
        "answer":   the final answer as a string
    prompt(example, kind="train") -> str   the user turn's content (system prompt + question); kind is
                                           "train" (RL/SFT prompt) or "eval" (evaluation prompt)
    target(example) -> str                 the full reference response (SFT target)
    correct(text, example) -> bool         is the completion's final answer right
    reward(text, example) -> float         the RL reward (correctness, plus format where used)
    hint(example) -> str                   IGPO's hint text: target(example) up to and without the final
                                           answer, aligned with target() (its tokens keep their positions);
                                           the toy's is its whole trace (the last line is the last step)
    official_hint(example) -> str          (optional) the official code's hint text, answer included

`get_task(name)` imports the module by name; an unknown name lists the known ones.
"""
import importlib

TASKS = {  # name -> module in this package
    "toy": "arith",          # synthetic chained arithmetic, download-free (tiny preset, tests)
    "gsm8k": "gsm8k",        # train 7473 / test 1319
    "math": "math",          # MATH train 7500 / MATH500 test
    "amc": "amc",            # AMC 12 2022-23, 83 problems (test only)
    "amc23": "amc23",        # AMC 2023, 40 problems (test only)
    "aime24": "aime24",      # AIME 2024, 30 problems (test only)
    "metamath": "metamath",  # MetaMathQA GSM/MATH_AnsAug, de-duplicated (train only)
}


def get_task(name: str):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return importlib.import_module(f"data.{TASKS[name]}")
