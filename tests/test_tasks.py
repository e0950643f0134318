"""
The real benchmark tasks (gsm8k, math, amc, amc23, aime24) and their shared loader (data/files.py): the
loaders on the read-only copy in ../shared/data (skipped when it is absent), error messages on malformed or
missing files (files the test writes itself; the download is monkeypatched, never real), and the
self-consistency of the grader on the reference solutions. `-s` prints the problems that fail it.

    python -m pytest tests/test_tasks.py -q -s
"""
import hashlib
import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import data
from data import files, grader

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} (the read-only data copy) is absent")
SIZES = {("gsm8k", "train"): 7473, ("gsm8k", "test"): 1319, ("math", "train"): 7498, ("math", "test"): 500,
         ("amc", "test"): 83, ("amc23", "test"): 40, ("aime24", "test"): 30}
INTERFACE = ("load", "prompt", "target", "correct", "reward", "hint")


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    # belt and braces: any test that reaches the network fails instead of downloading
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.delenv("NANO_IGPO_DATA", raising=False)


@pytest.fixture(scope="module")
def loaded():
    return {(name, split): data.get_task(name).load(split, SHARED) for name, split in SIZES}


def test_task_names_map_to_modules_with_the_interface():
    for name in {name for name, _ in SIZES}:
        task = data.get_task(name)
        assert all(callable(getattr(task, f, None)) for f in INTERFACE), name


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match="known tasks: .*aime24, amc, amc23, .*gsm8k, math"):
        data.get_task("gsm9k")


@needs_shared
def test_loaders_give_every_row_with_string_fields(loaded):
    for (name, split), rows in loaded.items():
        assert len(rows) == SIZES[name, split], (name, split)
        for ex in rows:
            assert ex["question"] and ex["answer"] and isinstance(ex["trace"], str), (name, split, ex)
    assert loaded["amc", "test"][0]["answer"] == "142"  # 142.0 in the file
    assert "<<" not in "".join(ex["trace"] for ex in loaded["gsm8k", "train"])  # calculator annotations gone
    assert all("," not in ex["answer"] for ex in loaded["gsm8k", "train"])  # "1,080" -> "1080"


@needs_shared
def test_reference_targets_earn_the_full_reward(loaded):
    for (name, split), rows in loaded.items():
        task = data.get_task(name)
        bad = [ex["id"] for ex in rows if task.reward(task.target(ex), ex) != 3.75]
        assert not bad, (name, split, bad[:5])


@needs_shared
def test_hints_hold_no_boxed_answer(loaded):
    for (name, split), rows in loaded.items():
        task = data.get_task(name)
        for ex in rows:
            h = task.hint(ex)
            assert "\\boxed" not in h and "####" not in h, (name, ex["id"])
            assert task.prompt(ex, "eval").endswith(ex["question"])


def self_consistency(texts, answers, ids):
    """Fraction of reference solutions that the grader marks correct against their own answer; prints the
    rest."""
    fails = [(i, t, a) for t, a, i in zip(texts, answers, ids) if not grader.correct(t, a)]
    for i, t, a in fails:
        print(f"\nself-consistency exception {i}: answer {a!r}, extracted {grader.extract_answer(t)!r}")
    return 1 - len(fails) / len(texts)


@needs_shared
def test_gsm8k_reference_solutions_grade_correct(loaded):
    raw = [json.loads(line) for line in (SHARED / "gsm8k_test.jsonl").read_text().splitlines()]
    rows = loaded["gsm8k", "test"]  # the original "... #### 72" text against the loader's answer
    assert self_consistency([r["answer"] for r in raw], [ex["answer"] for ex in rows],
                            [ex["id"] for ex in rows]) >= 0.995


@needs_shared
def test_math500_reference_solutions_grade_correct(loaded):
    rows = loaded["math", "test"]  # the solution's last \boxed against MATH500's separate answer field
    assert self_consistency([ex["trace"] for ex in rows], [ex["answer"] for ex in rows],
                            [ex["id"] for ex in rows]) >= 0.99


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_json_line_names_file_and_line(tmp_path):
    lines = ['{"question": "q", "answer": "1\\n#### 1"}', '{"question": oops']
    p = write(tmp_path / "gsm8k_test.jsonl", lines)
    with pytest.raises(ValueError, match=r"gsm8k_test\.jsonl:2: not valid JSON"):
        data.get_task("gsm8k").load("test", p)


def test_missing_field_names_file_line_and_field(tmp_path):
    p = write(tmp_path / "math500_test.jsonl", ['{"problem": "p", "solution": "s", "answer": "1"}', "",
                                                '{"problem": "p", "solution": "s"}'])
    with pytest.raises(ValueError, match=r"math500_test\.jsonl:3: field 'answer' missing"):
        data.get_task("math").load("test", p)
    array = '[{"problem": "p", "answer": 1.0}, {"problem": "p", "answer": "x"}]'
    p = write(tmp_path / "amc_test.json", [array])
    msg = r"amc_test\.json:record 1: field 'answer' missing or not int or float"
    with pytest.raises(ValueError, match=msg):
        data.get_task("amc").load("test", p)


def test_gsm8k_solution_without_final_line_is_an_error(tmp_path):
    p = write(tmp_path / "g.jsonl", ['{"question": "q", "answer": "no final line"}'])
    with pytest.raises(ValueError, match=r"g\.jsonl:1: field 'answer' has no final '#### X'"):
        data.get_task("gsm8k").load("test", p)


def test_loader_reads_a_folder_and_rejects_unknown_splits(tmp_path):
    write(tmp_path / "amc23_test.jsonl", ['{"id": 0, "problem": "p", "answer": 27.0}'])
    assert data.get_task("amc23").load("test", tmp_path) == [
        {"question": "p", "trace": "", "answer": "27", "id": 0}]
    with pytest.raises(ValueError, match="unknown split 'train'; this task has: test"):
        data.get_task("amc23").load("train", tmp_path)
    with pytest.raises(FileNotFoundError, match="no such data file"):
        data.get_task("aime24").load("test", tmp_path)  # an explicit folder without the file: no fallback


def test_lookup_prefers_the_env_folder(tmp_path, monkeypatch):
    write(tmp_path / "aime24_test.jsonl", ['{"id": 1, "problem": "p", "solution": "s", "answer": "025"}'])
    monkeypatch.setenv("NANO_IGPO_DATA", str(tmp_path))
    assert files.locate("aime24_test.jsonl") == tmp_path / "aime24_test.jsonl"


def test_offline_error_names_the_file_url_and_place(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "SHARED", tmp_path / "shared")
    monkeypatch.setattr(files, "CACHE", tmp_path / "cache")
    with pytest.raises(FileNotFoundError) as err:
        files.locate("gsm8k_test.jsonl")
    msg = str(err.value)
    assert files.SOURCES["gsm8k_test.jsonl"][0] in msg and str(tmp_path / "cache" / "gsm8k_test.jsonl") in msg
    with pytest.raises(FileNotFoundError, match="math_train.jsonl .*PROVENANCE"):
        files.locate("math_train.jsonl")  # no single-file source to download


def test_download_is_checked_and_cached_atomically(tmp_path, monkeypatch):
    body = b'{"id": 0, "problem": "p", "answer": 27.0}\n'
    monkeypatch.setattr(files, "SHARED", tmp_path / "shared")
    monkeypatch.setattr(files, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(body))
    monkeypatch.setitem(files.SOURCES, "amc23_test.jsonl", ("https://example.invalid/a", "0" * 64))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        files.locate("amc23_test.jsonl")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    sha = hashlib.sha256(body).hexdigest()
    monkeypatch.setitem(files.SOURCES, "amc23_test.jsonl", ("https://example.invalid/a", sha))
    assert data.get_task("amc23").load("test")[0]["answer"] == "27"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["amc23_test.jsonl"]  # no temp file left


def test_official_hints_are_shaped_as_metamath_responses():
    """--hint_with_answer's text: "<reasoning>\n" + a response with the final answer line(s), as MetaMathQA's
    GSM_AnsAug ("#### X" then "The answer is: X") and MATH_AnsAug ("The answer is: X") rows end."""
    gsm = {"question": "q", "trace": "Natalia sold 48/2 = 24 clips in May.\nIn all 48+24 = 72.",
           "answer": "72"}
    want = "<reasoning>\nNatalia sold 48/2 = 24 clips in May.\nIn all 48+24 = 72.\n#### 72\nThe answer is: 72"
    assert data.get_task("gsm8k").official_hint(gsm) == want
    math = {"question": "q", "trace": "So $\\log_2 64 = \\boxed{6}$.", "answer": "6"}
    assert data.get_task("math").official_hint(math) == "<reasoning>\n" + math["trace"] + "\nThe answer is: 6"
    assert files.official_hint({"question": "q", "trace": "", "answer": "3"}) == ""  # AMC: no trace
