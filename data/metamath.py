"""
MetaMathQA, the IGPO RL training set (IGPO.md B.5.2): the 395K JSON array `MetaMathQA-395K.json` of
meta-math/MetaMathQA, filtered to the answer-augmented GSM8K/MATH rows (type GSM_AnsAug, MATH_AnsAug) and
de-duplicated by query, keeping the first response. That leaves the ~15K GSM8K-train and MATH-train
questions, one GPT-3.5 solution each. Only split "train" exists.

One raw record (a GSM_AnsAug row; MATH rows have LaTeX and usually a \\boxed{} before the last line):
    {"query": "The town of Belize has 400 homes. One fourth of the town's homes are white. One fifth of the
               non-white homes have a fireplace. How many of the non-white homes do not have a fireplace?",
     "response": "One fourth of the town's homes are white, so there are 400/4 = 100 white homes.\\n...
                  Therefore, the number of non-white homes without a fireplace is 300 - 60 = 240.\\n
                  #### 240\\nThe answer is: 240",
     "type": "GSM_AnsAug", "original_question": "The town of Belize has 400 homes. ..."}
becomes
    {"question": "The town of Belize has 400 homes. ...",
     "trace": "One fourth of the town's homes are white, ... is 300 - 60 = 240.",
     "answer": "240", "type": "GSM_AnsAug", "response": "One fourth ... #### 240\\nThe answer is: 240"}

The answer is the official code's: the text after the LAST "The answer is:", else after the last "####",
else the whole response, stripped. Unlike the official code (which keeps the full response as the
reasoning, B.5.4), the trace drops the final "The answer is: X" line and every "#### X" line, so hints and
SFT targets do not carry the answer twice; the raw response stays as "response" for the official hint
(--hint_with_answer). prompt/target/correct/reward/hint/official_hint are the tasks' shared ones
(data/files.py); hint also cuts the \\boxed{} answer that most MATH_AnsAug traces contain.
"""
import os
import re
import tempfile
import urllib.request
from pathlib import Path

from data import files
from data.files import correct, hint, official_hint, prompt, reward, target  # noqa: F401 (the task interface)

FILENAME = "MetaMathQA-395K.json"  # ~396 MB
URL = "https://huggingface.co/datasets/meta-math/MetaMathQA/resolve/main/MetaMathQA-395K.json"
TYPES = ("GSM_AnsAug", "MATH_AnsAug")  # the two answer-augmentation types IGPO trains on
MARK = "The answer is:"
ANSWER_LINE = re.compile(r"^[ \t]*(####|The answer is:).*$\n?", re.MULTILINE)  # final-answer lines


def split_response(response: str) -> tuple[str, str]:
    """(trace, answer) of one MetaMathQA response, as described in the module docstring."""
    if MARK in response:
        head, _, answer = response.rpartition(MARK)
    elif "####" in response:
        head, _, answer = response.rpartition("####")
    else:  # no marker at all: the official code takes the whole response as the answer
        head, answer = response, response
    # drop whatever remains of the final-answer lines ("#### X", an earlier "The answer is: X")
    return ANSWER_LINE.sub("", head).strip(), answer.strip()


def find_file(path=None) -> Path:
    """files.locate's lookup (explicit path, $NANO_IGPO_DATA, ../shared/data, ~/.cache/nano_igpo), then a
    one-time download into $NANO_IGPO_DATA or the cache. files.py has no pinned sha256 for this file."""
    try:
        return files.locate(FILENAME, path)
    except FileNotFoundError:
        if path is not None:
            raise
    folder = Path(os.environ.get("NANO_IGPO_DATA") or files.CACHE)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{FILENAME}.")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(URL, timeout=60) as resp:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
    except OSError as e:  # offline, refused, timed out: say what to fetch and where to put it
        os.remove(tmp)
        where = f"{folder / FILENAME} (or in the folder $NANO_IGPO_DATA names)"
        raise FileNotFoundError(f"{FILENAME} not found and the download failed ({e}); fetch {URL} and "
                                f"save it as {where}") from e
    os.replace(tmp, folder / FILENAME)  # temp file then rename: never a half-written file under the real name
    return folder / FILENAME


def load(split: str = "train", path=None) -> list[dict]:
    if split != "train":  # checked before the lookup, which may download
        raise ValueError(f"metamath: unknown split {split!r}; MetaMathQA has only 'train'")
    rows, seen = [], set()
    for where, rec in files.records({"train": FILENAME}, split, find_file(path)):  # "file:record N", record
        query, response, kind = (files.need(rec, key, where) for key in ("query", "response", "type"))
        if kind not in TYPES or query in seen:
            continue  # other augmentation types; later responses to an already-kept query
        seen.add(query)
        trace, answer = split_response(response)
        rows.append({"question": query, "trace": trace, "answer": answer, "type": kind, "response": response})
    return rows
