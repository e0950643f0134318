"""
MetaMathQA loading on a small file in its format, written by the test (no download).

    python -m pytest tests/test_metamath.py -q
"""
import json

import pytest

from data import files, metamath

GSM = "A pen costs $2 and a book $3. How much for both?"
MATH = "What is $\\sqrt{4}+1$?"
RECORDS = [
    {"query": GSM, "response": "2 + 3 = <<2+3=5>>5.\n#### 5\nThe answer is: 5", "type": "GSM_AnsAug"},
    {"query": GSM, "response": "Second response.\nThe answer is: 6", "type": "GSM_AnsAug"},  # duplicate query
    {"query": "Rephrased pen question?", "response": "The answer is: 5", "type": "GSM_Rephrased"},
    {"query": "If the answer is 5, what is x?", "response": "x = 2.\nThe answer is: 2", "type": "GSM_FOBAR"},
    {"query": MATH, "response": "$\\sqrt{4}=2$, so the sum is $\\boxed{3}$.\nThe answer is: 3",
     "type": "MATH_AnsAug"},
    {"query": "Two markers?", "response": "First try.\nThe answer is: 7\nOn reflection 8.\nThe answer is: 8",
     "type": "MATH_AnsAug"},
    {"query": "Hash only?", "response": "Add them: 10.\n#### 10", "type": "GSM_AnsAug"},
    {"query": "No marker?", "response": "Forty-two", "type": "GSM_AnsAug"},
    {"query": MATH, "response": "Other.\nThe answer is: 4", "type": "MATH_AnsAug"},  # duplicate, MATH type
]


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / metamath.FILENAME
    path.write_text(json.dumps(RECORDS))
    return {r["question"]: r for r in metamath.load("train", path)}


def test_keeps_only_ansaug_types_and_the_first_response_per_query(rows):
    assert list(rows) == [GSM, MATH, "Two markers?", "Hash only?", "No marker?"]
    assert rows[GSM]["answer"] == "5" and rows[MATH]["answer"] == "3"  # the first responses, not 6 and 4
    assert rows[GSM]["type"] == "GSM_AnsAug" and rows[MATH]["type"] == "MATH_AnsAug"


def test_answer_is_after_the_last_marker_and_the_trace_drops_answer_lines(rows):
    assert rows[GSM]["trace"] == "2 + 3 = <<2+3=5>>5."  # "#### 5" and "The answer is: 5" both gone
    assert rows["Two markers?"]["answer"] == "8"
    assert rows["Two markers?"]["trace"] == "First try.\nOn reflection 8."
    assert rows["Hash only?"] == {"question": "Hash only?", "trace": "Add them: 10.", "answer": "10",
                                  "type": "GSM_AnsAug", "response": "Add them: 10.\n#### 10"}
    assert rows["No marker?"]["answer"] == "Forty-two"  # the official fallback: the whole response
    assert all("The answer is" not in r["trace"] and "####" not in r["trace"] for r in rows.values())


def test_task_interface(rows):
    ex = rows[MATH]
    assert metamath.prompt(ex).endswith("\n\n" + MATH) and "\\boxed" in metamath.prompt(ex, "eval")
    assert metamath.target(ex).startswith("<reasoning>\n") and "\\boxed{3}" in metamath.target(ex)
    good = "<reasoning>\nok\n</reasoning>\n<answer>\n\\boxed{3}\n</answer>"
    assert metamath.correct(good, ex) and not metamath.correct(good.replace("{3}", "{4}"), ex)
    assert metamath.reward(good, ex) == 3.75 and metamath.reward("no idea", ex) == 0.0
    assert "3" not in metamath.hint(ex) and "\\sqrt{4}=2" in metamath.hint(ex)  # the boxed answer is cut
    assert rows[GSM]["trace"] in metamath.hint(rows[GSM]) and "answer is" not in metamath.hint(rows[GSM])


def test_only_the_train_split_exists(tmp_path):
    with pytest.raises(ValueError, match="only 'train'"):
        metamath.load("test", tmp_path / "never-read.json")


@pytest.mark.parametrize("content, message", [
    ("[{\"query\": ", "not valid JSON"),
    ("[]", "no problems in it"),  # not "Sample larger than population" at the first RL step
    (json.dumps({"query": "q"}), "JSON array"),
    (json.dumps(RECORDS[:2] + ["oops"]), "record 2"),  # not an object
    (json.dumps(RECORDS[:3] + [{"query": "q", "type": "GSM_AnsAug"}]), "record 3: field 'response'"),
    (json.dumps([{"query": 7, "response": "r", "type": "GSM_AnsAug"}]), "record 0: field 'query'"),
])
def test_a_malformed_file_names_the_file_record_and_field(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        metamath.load("train", path)
    assert str(path) in str(err.value)


def test_lookup_via_env_then_a_clear_offline_error(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "SHARED", tmp_path / "no-shared")
    monkeypatch.setattr(files, "CACHE", tmp_path / "no-cache")
    monkeypatch.setenv("NANO_IGPO_DATA", str(tmp_path))
    (tmp_path / metamath.FILENAME).write_text(json.dumps(RECORDS))
    assert len(metamath.load()) == 5  # found in $NANO_IGPO_DATA, no path given
    (tmp_path / metamath.FILENAME).unlink()
    monkeypatch.setattr(metamath, "URL", "http://127.0.0.1:9/MetaMathQA-395K.json")  # nothing listens there
    with pytest.raises(FileNotFoundError, match="download failed.*127.0.0.1:9") as err:
        metamath.load()
    assert str(tmp_path / metamath.FILENAME) in str(err.value) and "$NANO_IGPO_DATA" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no half-written file left behind


def test_official_hint_is_reasoning_tag_plus_the_raw_response(rows):
    # the official code's "reasoning" field (utils/data_utils.py): the whole response, answer lines included
    assert metamath.official_hint(rows[GSM]) == "<reasoning>\n2 + 3 = <<2+3=5>>5.\n#### 5\nThe answer is: 5"
    assert metamath.official_hint(rows["No marker?"]) == "<reasoning>\nForty-two"
