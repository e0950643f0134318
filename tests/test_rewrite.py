"""
The trace rewriter against a real HTTP server on loopback (http.server in a thread, port 0) with canned
replies: HTTP 500s, slow replies (past a short client timeout), malformed JSON, wrong answers, too-long
rewrites, a dead input, and a run killed midway.

    python -m pytest tests/test_rewrite.py -q
"""
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from data import rewrite

REPO = Path(__file__).resolve().parents[1]


class Handler(BaseHTTPRequestHandler):
    """The rewrite of an input is "Short.\\n\\boxed{N}", N the last number in the request (its trace's last
    number); its problem's "case=..." tag picks a misbehaviour, some for the first attempt only."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][0]["content"]
        case = (re.search(r"case=(\w+)", content) or [None, "ok"])[1]
        with self.server.lock:
            self.server.attempts[case] += 1
            self.server.auth.add(self.headers.get("Authorization"))
            first = self.server.attempts[case] == 1
        answer = int(re.findall(r"-?\d+", content)[-1])
        texts = {"wrong": f"Short.\n\\boxed{{{answer + 1}}}", "long": "x" * 500 + f"\\boxed{{{answer}}}",
                 "huge": "\\boxed 1 " * 50000 + f"\\boxed{{{answer}}}"}  # 50,000 boxes: graded in linear time
        text = texts.get(case, f"Short.\n\\boxed{{{answer}}}")
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        if case == "dead" and not self.server.healed or case == "err500" and first:
            return self.send_error(500 if case == "err500" else 503)
        if case == "busy" and first:  # rate-limited: come back in a second
            self.send_response(429)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if case == "echo":  # a 401 whose body echoes the request's headers, the API key across byte 200
            body = ("x" * 170 + f"Authorization: {self.headers.get('Authorization')}").encode()
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        if case == "slow" and first or case == "delay":
            time.sleep(1.0 if case == "slow" else 0.1)
        if case == "badjson" and first:
            reply = b'{"choices": [{"message": '  # cut short
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # never route loopback through a proxy
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads, srv.lock = True, threading.Lock()
    srv.attempts, srv.auth, srv.healed = Counter(), set(), False
    srv.handle_error = lambda *args: None  # a timed-out client leaves a broken pipe: expected here
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    yield srv
    srv.shutdown()
    srv.server_close()


def write_inputs(path: Path, cases: list[str]) -> Path:
    with open(path, "w") as f:
        for i, case in enumerate(cases):
            f.write(json.dumps({"problem": f"Problem {i} case={case}", "answer": str(10 + i),
                                "solution": f"Wait, let me check again... so the result is {10 + i}"}) + "\n")
    return path


def cli(srv, inp, out, *extra) -> list[str]:
    return [f"--in={inp}", f"--out={out}", f"--url={srv.url}", "--model=canned", "--workers=4", "--retries=3",
            "--backoff=0.01", "--timeout=0.5", "--max_tokens_len=100", "--tokenizer=byte", *extra]


def ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in out.read_text().splitlines()]


def test_retries_answer_check_length_filter_and_failed_inputs_retried_on_rerun(server, tmp_path, capsys):
    cases = ["ok", "err500", "slow", "badjson", "wrong", "long", "dead"]
    inp, out = write_inputs(tmp_path / "in.jsonl", cases), tmp_path / "out.jsonl"
    counts = rewrite.main(cli(server, inp, out, "--key=sekrit"))
    assert counts == Counter(ok=4, rejected=1, too_long=1, failed=1)
    assert server.attempts == Counter(ok=1, err500=2, slow=2, badjson=2, wrong=1, long=1, dead=3)  # retries
    assert server.auth == {"Bearer sekrit"}
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    statuses = {k: r["status"] for k, r in rows.items()}
    # the dead input ("7") is not written
    assert statuses == {"1": "ok", "2": "ok", "3": "ok", "4": "ok", "5": "rejected", "6": "too_long"}
    assert rows["2"]["trace"] == "Short.\n\\boxed{11}" and rows["2"]["new_len"] == len(rows["2"]["trace"])
    assert [rows[k]["attempts"] for k in "1234"] == [1, 2, 2, 2]
    assert rows["6"]["new_len"] > 100
    assert rows["2"]["orig_len"] == len("Wait, let me check again... so the result is 11")
    printed = capsys.readouterr().out
    assert "done 4, rejected for answer 1, too long 1, failed 1" in printed
    assert "3 retried requests" in printed
    assert "#" in printed  # the histogram
    sft = rewrite.load_rewritten(out)
    assert sorted(r["question"] for r in sft) == [f"Problem {i} case={c}" for i, c in enumerate(cases[:4])]
    assert all(set(r) == {"question", "trace", "answer"} and r["trace"].endswith("}") for r in sft)

    server.healed = True  # the dead input comes back: a rerun retries it, and only it
    assert rewrite.main(cli(server, inp, out)) == Counter(ok=1)
    assert sorted(ids(out)) == [str(i) for i in range(1, 8)]


def test_resume_after_a_limited_run_and_a_torn_last_line(server, tmp_path):
    inp, out = write_inputs(tmp_path / "in.jsonl", ["ok"] * 10), tmp_path / "out.jsonl"
    rewrite.main(cli(server, inp, out, "--limit=3"))
    assert len(ids(out)) == 3
    with open(out, "a") as f:
        f.write('{"id": "9", "problem": "Prob')  # killed mid-write: no newline
    with pytest.raises(ValueError, match=f"{out}:4: not valid JSON"):  # a reader takes every line for a row
        rewrite.load_rewritten(out)
    rewrite.main(cli(server, inp, out))  # the writer cuts its own torn line off
    assert sorted(ids(out), key=int) == [str(i) for i in range(1, 11)]  # each id exactly once
    assert server.attempts["ok"] == 10


def test_resume_after_the_process_is_killed_midway(server, tmp_path):
    inp, out = write_inputs(tmp_path / "in.jsonl", ["delay"] * 16), tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "data.rewrite", *cli(server, inp, out, "--workers=2")],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    few_lines = lambda: not out.exists() or out.read_text().count("\n") < 3  # fewer than 3 written
    while few_lines() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.kill()  # SIGKILL: no cleanup at all
    proc.wait()
    before = len(ids(out))
    assert 3 <= before < 16
    rewrite.main(cli(server, inp, out, "--workers=8"))
    assert sorted(ids(out), key=int) == [str(i) for i in range(1, 17)]  # all present, none twice


def test_the_api_key_never_reaches_stderr_and_long_replies_are_graded(server, tmp_path, capsys):
    inp, out = write_inputs(tmp_path / "in.jsonl", ["echo", "huge"]), tmp_path / "out.jsonl"
    key = "sk-" + "s3cret" * 4
    assert rewrite.main(cli(server, inp, out, f"--key={key}")) == Counter(failed=1, too_long=1)
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "Authorization: Bearer <API" in err
    assert key not in err and "sk-s3c" not in err  # not even the part before byte 200
    assert json.loads(out.read_text())["new_len"] > 400000  # the long reply, its boxed answer checked


def test_input_aliases_openr1_generations_and_tasks(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"uuid": "u1", "problem": "P", "answer": "2", "solution": "short", "generations": ["bad", "good"],
         "correctness_math_verify": [False, True]},
        {"question": "Q", "solution": "so it is \\boxed{7}"},  # answer from the trace's box
        {"id": 5, "query": "R", "response": "r", "answer": 3},
    ]) + "\n\n")
    assert rewrite.read_inputs(path) == [
        {"id": "u1", "problem": "P", "trace": "good", "answer": "2"},
        {"id": "2", "problem": "Q", "trace": "so it is \\boxed{7}", "answer": "7"},
        {"id": "5", "problem": "R", "trace": "r", "answer": "3"}]
    path.write_text('{"problem": "P", "answer": "1"}\n')
    with pytest.raises(ValueError, match=f"{path}:1: needs a question"):
        rewrite.read_inputs(path)
    rows = rewrite.task_inputs("toy", "train")
    assert rows[0]["id"] == "toy-train-0" and rows[0]["trace"] and rows[0]["answer"]


def test_histogram_counts_every_length_once():
    lines = rewrite.histogram([5, 150, 180, 990], [40, 60]).splitlines()
    assert "before (4)" in lines[0] and "after (2)" in lines[0]
    rows = [re.fullmatch(r"\s*(\d+)-(\d+)\s+#*\s+(\d+)\s+#*\s+(\d+)", line).groups() for line in lines[1:]]
    assert [(int(lo), int(hi)) for lo, hi, _, _ in rows] == [(100 * k, 100 * k + 99) for k in range(10)]
    assert [int(b) for _, _, b, _ in rows] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert [int(a) for _, _, _, a in rows] == [2] + [0] * 9


def test_a_429_is_retried_after_the_wait_its_retry_after_asks_for(server, tmp_path):
    inp, out = write_inputs(tmp_path / "in.jsonl", ["busy"]), tmp_path / "out.jsonl"
    t0 = time.time()
    assert rewrite.main(cli(server, inp, out, "--timeout=5")) == Counter(ok=1)
    assert server.attempts["busy"] == 2 and time.time() - t0 >= 1.0  # not --backoff's 0.01 s


def test_a_run_whose_inputs_all_failed_exits_nonzero_saying_how_many(server, tmp_path):
    inp, out = write_inputs(tmp_path / "in.jsonl", ["dead", "dead"]), tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "data.rewrite", *cli(server, inp, out, "--retries=1")]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.splitlines()[-1] == ("error: 2 of 2 inputs failed (not written): rerun the same command "
                                         "to retry them")


def test_a_data_file_keeps_every_row_the_last_one_without_its_newline_too(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"problem": f"p{i}", "trace": "t", "answer": "1", "status": "ok"} for i in range(3)]
    for n in (3, 1):  # a hand-made file: no final newline (only this command's own torn line is dropped)
        path.write_text("\n".join(map(json.dumps, rows[:n])))
        assert [r["question"] for r in rewrite.load_rewritten(path)] == [f"p{i}" for i in range(n)]
