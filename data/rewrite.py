r"""
Rewrite reasoning traces into concise ones with any OpenAI-compatible chat endpoint: the data step of
"length-aligned SFT" (IGPO.md B.6.1, where LLaMA-4-Maverick rewrote OpenR1-Math traces; the paper's prompt is
unpublished, INSTRUCTION below is ours). Standard library only, plus our tokenizer for the length filter.

    python -m data.rewrite --in=openr1.jsonl --out=rewritten.jsonl --url=http://localhost:8000/v1 \
        --model=NAME --workers=8 --max_tokens_len=1024 --tokenizer=DIR
    python -m data.rewrite --task=gsm8k --split=train --out=... ...     (any task of data/ as the input)

Input JSONL: a question (problem | question | query), a trace (trace | generations | generation | response |
solution; OpenR1's list of generations gives its first math-verified one) and an answer (answer; else the
trace's last \boxed{}). Every finished input becomes one line of --out, written by the main thread and
flushed:
    {"id": "17", "problem": "...", "trace": "...rewritten...", "answer": "72", "orig_len": 912,
     "new_len": 143, "attempts": 1, "status": "ok"}
    status: ok | rejected (its \boxed{} answer != the input answer) | too_long
A killed run loses only the requests in flight: rerunning the same command skips the ids already in --out.
Inputs whose requests keep failing (HTTP errors, timeouts, malformed replies; --retries attempts with
exponential backoff, or the wait a 429 or 503 reply's Retry-After asks for) are reported and NOT written, so a
rerun retries them; the command then exits with status 1, saying how many failed. load_rewritten(path)
returns the "ok" rows in the task shape (question, trace, answer) for SFT.
"""
import argparse
import email.utils
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed

from data import files, get_task, grader
from data.tokenizer import get_tokenizer

INSTRUCTION = "\n".join([  # one line each
    "Rewrite the solution to the math problem below so that it is concise and structured.",
    '- Remove redundant reflection: re-checks, hesitations ("wait", "let me verify"), restarts and '
    "abandoned attempts.",
    "- Condense multi-sentence elaborations into precise, mathematically rigorous statements.",
    "- Keep every essential step and the logical flow from the problem to the answer. Do not add new ideas.",
    r"- Do not change the final answer. End with the final answer written once as \boxed{...}.",
    "Output only the rewritten solution, with no preamble or commentary."])
QUESTION_KEYS = ("problem", "question", "query")
# OpenR1: R1's traces before solution
TRACE_KEYS = ("trace", "generations", "generation", "response", "solution")
RETRY_CODES = {408, 409, 425, 429}  # plus every 5xx; other 4xx (bad request, auth) fail at once


def pick(rec: dict, keys: tuple) -> str | None:
    for k in keys:
        v = rec.get(k)
        # OpenR1 keeps several generations: the first math-verified one, else the first
        if isinstance(v, list):
            ok = rec.get("correctness_math_verify") or []
            v = next((g for g, c in zip(v, ok) if c), v[0] if v else None)
        if isinstance(v, (str, int, float)) and str(v).strip():
            return str(v).strip()
    return None


def read_inputs(path: str) -> list[dict]:
    rows = []
    for where, rec in files.read_jsonl(path):  # where = "path:line"
        question, trace = pick(rec, QUESTION_KEYS), pick(rec, TRACE_KEYS)
        answer = pick(rec, ("answer",)) or (trace and grader.extract_answer(trace))
        if not (question and trace and answer):
            raise ValueError(f"{where}: needs a question {QUESTION_KEYS}, a trace {TRACE_KEYS} and an answer")
        line = where.rsplit(":", 1)[1]
        rid = next((str(rec[k]) for k in ("id", "uuid") if k in rec), line)  # else the line number
        rows.append({"id": rid, "problem": question, "trace": trace, "answer": answer})
    return rows


def task_inputs(name: str, split: str) -> list[dict]:
    rows = get_task(name).load(split)
    # rows without a trace (the tasks that have none) give nothing to rewrite
    return [{"id": str(r.get("id", f"{name}-{split}-{i}")), "problem": r["question"], "trace": r["trace"],
             "answer": r["answer"]} for i, r in enumerate(rows) if r["trace"]]


def read_output(path: str) -> list[tuple[str, dict]]:
    """The finished rows of the output file this command appends to, as (where, row), where = "path:line". A
    last line without its newline was torn by a kill mid-write: it is not a finished row, and it is cut off
    so appending starts clean."""
    if not os.path.exists(path):
        return []
    with open(path, "rb+") as f:
        data = f.read()
        if not data.endswith(b"\n"):
            data = data[:data.rfind(b"\n") + 1]
            f.truncate(len(data))
    return files.read_jsonl(path, data)


def chat(args, content: str) -> str:
    """One POST {url}/chat/completions; the reply's text, or an exception."""
    messages = [{"role": "user", "content": content}]
    body = {"model": args.model, "messages": messages, "temperature": args.temperature}
    auth = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    headers = {"Content-Type": "application/json"} | auth
    url = args.url.rstrip("/") + "/chat/completions"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(req, timeout=args.timeout) as resp:
        text = json.loads(resp.read())["choices"][0]["message"]["content"]
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"no text in the reply: {text!r}")
    return re.sub(r"^\s*<think>.*?</think>", "", text, flags=re.DOTALL).strip()  # reasoning models' preamble


def redact(text: str, key: str | None) -> str:
    """Error text with the API key cut out: a server may echo the request's Authorization header."""
    return text.replace(key, "<API key>") if key else text


def retry_after(e: urllib.error.HTTPError) -> float | None:
    """The seconds a reply's Retry-After header asks a client to wait (a number, or an HTTP date), if any."""
    value = (e.headers or {}).get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):  # absent or unreadable: the usual backoff
        return None


def chat_with_retries(args, content: str) -> tuple[str, int]:
    """(reply text, attempts it took), or a RuntimeError once --retries attempts failed. Between attempts:
    the wait the server asked for (Retry-After, on a 429 or 503), else exponential backoff."""
    for attempt in range(args.retries):
        wait = args.backoff * 2 ** attempt
        try:
            return chat(args, content), attempt + 1
        except urllib.error.HTTPError as e:
            if e.code < 500 and e.code not in RETRY_CODES:  # the body, redacted before it is cut short
                body = redact(e.read().decode("utf-8", "replace"), args.key)
                raise RuntimeError(f"HTTP {e.code}: {body[:200]!r}") from e
            err, wait = e, retry_after(e) or wait
        except (OSError, http.client.HTTPException, ValueError, KeyError, IndexError, TypeError) as e:
            err = e  # connection refused/reset, timeout, torn or malformed JSON
        if attempt + 1 < args.retries:
            time.sleep(wait)
    raise RuntimeError(f"{args.retries} attempts failed, the last with {err!r}")


def process(row: dict, args, enc) -> dict:
    """Rewrite one input; runs in a worker thread. Returns its output line, or one with status "failed"."""
    n_tokens = lambda text: len(enc.encode_ordinary(text))
    out = {"id": row["id"], "problem": row["problem"], "trace": None, "answer": row["answer"],
           "orig_len": n_tokens(row["trace"]), "new_len": None}
    try:
        content = f"{INSTRUCTION}\n\nProblem:\n{row['problem']}\n\nSolution:\n{row['trace']}"
        text, out["attempts"] = chat_with_retries(args, content)
    except Exception as e:
        return out | {"status": "failed", "error": redact(str(e), args.key)}
    out.update(trace=text, new_len=n_tokens(text))
    if not grader.is_equiv(grader.extract_answer(text), row["answer"]):
        return out | {"status": "rejected"}
    return out | {"status": "too_long" if out["new_len"] > args.max_tokens_len else "ok"}


def histogram(before: list[int], after: list[int], n_bins: int = 10, width: int = 30) -> str:
    """Side-by-side ASCII histograms of token lengths, in bins of a round width."""
    top = max(before + after, default=0)
    step = next(s for k in range(12) for s in (10 ** k, 2 * 10 ** k, 5 * 10 ** k) if s * n_bins > top)
    b, a = (Counter(x // step for x in xs) for xs in (before, after))  # bin index -> count
    scale = width / max([*b.values(), *a.values(), 1])
    bar = lambda n: ("#" * round(n * scale)).ljust(width)
    lines = [f"{'tokens':>13}  {'before (' + str(len(before)) + ')':<{width + 6}}  after ({len(after)})"]
    for i in range(top // step + 1):
        lines.append(f"{i * step:>6}-{(i + 1) * step - 1:<6}  {bar(b[i])} {b[i]:>5}  {bar(a[i])} {a[i]:>5}")
    return "\n".join(lines)


class Help(argparse.RawTextHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help keeps the docstring's line breaks and shows every flag's default."""


def main(argv=None) -> Counter:
    summary = __doc__.split("\n\n")[0]  # the docstring's first paragraph
    p = argparse.ArgumentParser(description=summary, formatter_class=Help)
    p.add_argument("--in", dest="inp", help="input JSONL (OpenR1-Math style); or use --task")
    p.add_argument("--task", help="take the inputs from a task of data/ instead, e.g. gsm8k")
    p.add_argument("--split", default="train", help="the task's split, with --task")
    p.add_argument("--out", required=True, help="output JSONL, appended to; rerun to resume")
    p.add_argument("--url", required=True, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    p.add_argument("--model", required=True, help="the model name the endpoint serves")
    # not default=$OPENAI_API_KEY: --help prints the defaults
    p.add_argument("--key", help="API key; else $OPENAI_API_KEY")
    p.add_argument("--workers", type=int, default=8, help="concurrent requests")
    p.add_argument("--max_tokens_len", type=int, default=1024,
                   help="longer rewritten traces are filtered out")
    p.add_argument("--tokenizer", default="byte",
                   help="'byte' or a tokenizer folder; the SFT model's for real runs")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature of the rewrites")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    p.add_argument("--retries", type=int, default=5, help="attempts per input")
    p.add_argument("--backoff", type=float, default=2.0,
                   help="seconds before the 2nd attempt, doubling after")
    p.add_argument("--limit", type=int, default=0, help="rewrite at most this many new inputs (0: all)")
    args = p.parse_args(argv)
    args.key = args.key or os.environ.get("OPENAI_API_KEY")
    # every setting checked before any request or writing: the least each may be
    least = dict(workers=1, retries=1, max_tokens_len=1, limit=0, temperature=0.0, backoff=0.0)
    for name, lo in least.items():
        if getattr(args, name) < lo:
            raise ValueError(f"--{name}={getattr(args, name)}: expected >= {lo}")
    if args.timeout <= 0:
        raise ValueError(f"--timeout={args.timeout}: expected > 0")
    if (args.inp is None) == (args.task is None):
        raise ValueError("give exactly one of --in and --task")
    enc = get_tokenizer(args.tokenizer)

    rows = read_inputs(args.inp) if args.inp else task_inputs(args.task, args.split)
    done = {r["id"] for _, r in read_output(args.out)}
    seen, todo = set(done), []
    for row in rows:  # skip finished ids, and repeated ids in the input (the first one counts)
        if row["id"] not in seen:
            seen.add(row["id"])
            todo.append(row)
    todo = todo[:args.limit] if args.limit > 0 else todo
    print(f"{len(rows)} inputs, {len(done)} already in {args.out}, {len(todo)} to rewrite")
    counts, retried = Counter(), 0
    pool = ThreadPoolExecutor(args.workers)
    try:
        with open(args.out, "a", encoding="utf-8") as f:
            futures = [pool.submit(process, row, args, enc) for row in todo]
            for k, future in enumerate(as_completed(futures), 1):
                row = future.result()
                counts[row["status"]] += 1
                retried += row.get("attempts", 1) - 1  # of the inputs that got a reply
                if row["status"] == "failed":  # not written: a rerun retries it
                    print(f"failed {row['id']}: {row['error']}", file=sys.stderr)
                else:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                    f.flush()  # one whole line at a time: a kill loses at most the requests in flight
                if k % max(1, len(todo) // 10) == 0:
                    print(f"{k}/{len(todo)} {dict(counts)}", flush=True)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

    rows_out = [r for _, r in read_output(args.out)]
    total = Counter(r["status"] for r in rows_out)
    print(f"this run: done {counts['ok']}, rejected for answer {counts['rejected']}, "
          f"too long {counts['too_long']}, failed {counts['failed']} (not written; rerun to retry); "
          f"{retried} retried requests")
    print(f"{args.out}: {len(rows_out)} rows: ok {total['ok']}, rejected {total['rejected']}, "
          f"too_long {total['too_long']} (max_tokens_len={args.max_tokens_len}, tokenizer={args.tokenizer})")
    print(histogram([r["orig_len"] for r in rows_out], [r["new_len"] for r in rows_out]))
    return counts


def load_rewritten(path: str) -> list[dict]:
    """The kept ("ok") rows of a rewrite output (or of any file of that shape: every line is a row, the last
    one too without its newline), in the task shape, ready for SFT."""
    rows = [(where, r) for where, r in files.read_jsonl(path) if files.need(r, "status", where) == "ok"]
    return [{"question": files.need(r, "problem", where), "trace": files.need(r, "trace", where),
             "answer": files.need(r, "answer", where)} for where, r in rows]


if __name__ == "__main__":
    try:
        counts = main()
    except (ValueError, OSError) as e:  # bad input or an unreadable file: one line, as run_main gives
        sys.exit(f"error: {e}")
    if counts["failed"]:  # the output is incomplete: a pipeline must not go on as if it were done
        sys.exit(f"error: {counts['failed']} of {counts.total()} inputs failed (not written): rerun the same "
                 "command to retry them")
