"""
What the real-data tasks (gsm8k, math, amc, amc23, aime24) share: finding a data file, reading it with
errors that name the file, line and field, and the task-interface functions that only need an example's
"question", "trace" and "answer" (see data/__init__.py).

A data file is looked for, in order: the explicit `path` argument (the file, or a folder holding it),
$NANO_IGPO_DATA/<name>, ../shared/data/<name> next to the repo, ~/.cache/nano_igpo/<name>. When none has
it, it is downloaded once from its public source (pinned commit, sha256 checked) into $NANO_IGPO_DATA or
the cache; offline, the error says which file to fetch, from where, and where to put it.
"""
import hashlib
import json
import os
import tempfile
import urllib.request
from pathlib import Path

from data import grader

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"  # read-only, beside the repo (PROVENANCE.md: each file)
CACHE = Path.home() / ".cache" / "nano_igpo"
GSM = "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c"
QWEN = "https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/a45202bd16f1ec06f433442dc1152d0074773465"
SOURCES = {  # name -> (URL at the commit PROVENANCE.md records, sha256 of the file)
    "gsm8k_train.jsonl": (f"{GSM}/grade_school_math/data/train.jsonl",
                          "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465"),
    "gsm8k_test.jsonl": (f"{GSM}/grade_school_math/data/test.jsonl",
                         "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14"),
    "math500_test.jsonl": ("https://raw.githubusercontent.com/ZubinGou/math-evaluation-harness/"
                           "db77bc6bb2a17c90ed2d63e88ebd8c40a82858c5/data/math_oai/test.jsonl",
                           "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132"),
    "amc_test.json": ("https://raw.githubusercontent.com/agentica-project/deepscaler/"
                      "95ef74ffee001cce89463f2d61dfdce1d03576c1/deepscaler/data/test/amc.json",
                      "2666a217cb566efb77ebfce61841d5d8855d4b4be89633b29df3a43dcfd942dd"),
    "amc23_test.jsonl": (f"{QWEN}/evaluation/data/amc23/test.jsonl",
                         "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4"),
    "aime24_test.jsonl": (f"{QWEN}/evaluation/data/aime24/test.jsonl",
                          "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac"),
}
# math_train.jsonl has no single source file: it concatenates the 7500 per-problem JSON files of
# aiwaves-cn/agents (shared/data/PROVENANCE.md section 2), too many requests for a quiet download.


def locate(name: str, path=None) -> Path:
    if path is not None:  # explicit beats everything, and a wrong one is an error, not a fallback
        p = Path(path) / name if Path(path).is_dir() else Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such data file")
        return p
    env = os.environ.get("NANO_IGPO_DATA")
    for folder in ([Path(env)] if env else []) + [SHARED, CACHE]:
        if (folder / name).is_file():
            return folder / name
    return download(name, Path(env) if env else CACHE)


def download(name: str, folder: Path) -> Path:
    if name not in SOURCES:
        raise FileNotFoundError(f"data file {name} not found and it has no single-file source: build it as "
                                f"shared/data/PROVENANCE.md describes, then put it in {folder}")
    url, sha = SOURCES[name]
    try:
        body = urllib.request.urlopen(url, timeout=60).read()
    except OSError as e:  # URLError, timeouts and refused connections are all OSErrors
        raise FileNotFoundError(f"data file {name} not found and the download failed ({e}); fetch {url} "
                                f"and save it as {folder / name} "
                                "(or in the folder $NANO_IGPO_DATA names)") from e
    if hashlib.sha256(body).hexdigest() != sha:
        raise ValueError(f"{url}: sha256 mismatch, expected {sha}; not caching it")
    # temp file then rename: a crash or a parallel rank never leaves a half-written file under the real name
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(body)
    os.replace(tmp, folder / name)
    return folder / name


def records(files: dict, split: str, path=None) -> list[tuple[str, dict]]:
    """[(where, row)] for a split's file, where = "file:line" (JSON Lines) or "file:record N" (a JSON
    array), for error messages. `files` maps split -> file name. An empty file is an error."""
    if split not in files:
        raise ValueError(f"unknown split {split!r}; this task has: {', '.join(files)}")
    p = locate(files[split], path)
    if p.suffix != ".json":
        rows = read_jsonl(p)
    else:  # one JSON array (amc_test.json)
        array = parse_json(p.read_bytes(), p)
        if not isinstance(array, list):
            raise ValueError(f"{p}: expected a JSON array of problems")
        rows = [(f"{p}:record {i}", row) for i, row in enumerate(array)]
    if not rows:
        raise ValueError(f"{p}: no problems in it")
    return rows


def need_file(path):
    """path, or a FileNotFoundError saying what is there instead of a file."""
    if not os.path.isfile(path):
        instead = "a folder, not a file" if os.path.isdir(path) else "no such file"
        raise FileNotFoundError(f"{path}: {instead}")
    return path


def parse_json(data: bytes, path, line: int | None = None):
    """data (UTF-8 JSON) parsed; errors name path and `line` (data is that line of the file), or the line of
    the JSON error within a whole file."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}{'' if line is None else f':{line}'}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{line or e.lineno}: not valid JSON ({e.msg})") from None


def read_jsonl(path, data: bytes | None = None) -> list[tuple[str, dict]]:
    """[(where, row)] of a JSON Lines file (or of its bytes, `data`), where = "file:line"; blank lines are
    skipped. A missing file, or a line that is not UTF-8 or not a JSON object, is an error naming it."""
    if data is None:
        data = Path(need_file(path)).read_bytes()
    rows = []
    for i, line in enumerate(data.split(b"\n"), 1):  # not str.splitlines: JSON strings may hold U+2028
        if not line.strip():
            continue
        row = parse_json(line, path, i)
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{i}: expected a JSON object, got a {type(row).__name__}")
        rows.append((f"{path}:{i}", row))
    return rows


def need(row: dict, key: str, where: str, kind=str):
    """row[key], or a ValueError naming the file, line and field (also when the row is not an object)."""
    if not isinstance(row, dict) or not isinstance(row.get(key), kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ValueError(f"{where}: field {key!r} missing or not {names}")
    return row[key]


def number(x: float) -> str:
    # 27.0 -> "27": the AMC files store integer answers as floats, and a target should not box "27.0"
    return str(int(x)) if float(x).is_integer() else str(x)

# --------------------------------------------------------------------------- the shared task interface


def prompt(example: dict, kind: str = "train") -> str:
    return grader.make_prompt(example["question"], kind)


def target(example: dict) -> str:
    return grader.target(example["trace"], example["answer"])


def correct(text: str, example: dict) -> bool:
    return grader.correct(text, example["answer"])


def reward(text: str, example: dict) -> float:
    return grader.reward(text, example["answer"])


def hint(example: dict) -> str:
    # target()'s reasoning part without its boxed answer, starting like target() so that hint tokens sit at
    # their positions in the reference response; traces without a box (GSM8K's, whose "#### X" line load()
    # drops) come back whole, and tasks without traces (AMC) give ''
    return "<reasoning>\n" + grader.remove_boxes(example["trace"]) if example["trace"] else ""


def official_hint(example: dict) -> str:
    # the official code's hint text (IGPO.md B.5.2): "<reasoning>\n" + the raw MetaMathQA response, its final
    # answer line(s) included (--hint_with_answer); rows of other files get a response shaped as MATH_AnsAug's
    response = example.get("response")
    if response is None and example["trace"]:
        response = f"{example['trace']}\nThe answer is: {example['answer']}"
    return "<reasoning>\n" + response if response else ""
