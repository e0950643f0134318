"""
Evaluation: sample a task's test split with sample.py (prompts sharded across ranks, results gathered) and
score it with the task's reward code, the same as training's. The library part serves sft.py and
train_igpo.py; the CLI evaluates any checkpoint on any task:

    python eval.py --ckpt=out/sft --task=toy                                 # gen_len 16, greedy pass@1
    python eval.py --ckpt=DIR --task=gsm8k --gen_lens=256,512 --block_len=32  # IGPO.md A's protocol
    python eval.py --ckpt=DIR --task=amc --k=16 --temperature=0.1             # AMC: avg@16 at T=0.1 (B.8.1)
    torchrun --standalone --nproc_per_node=8 eval.py --ckpt=DIR --task=math   # same code, 8 shards

Writes out_dir/generations_<gen_len>.jsonl (a line per (problem, sample): text, extracted answer, verdict),
metrics.json and settings.json, and prints a table. Rank 0 appends each finished batch, so a run started
again with the same flags redoes only the missing (problem, sample) pairs.
"""
import contextlib
import json
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from tqdm import tqdm

import common as C
import model as M
from common import parse_args, print0, run_main, setup, stream_seed
from data import TASKS, get_task, grader
from data.tokenizer import EOS, MASK, chat, decode, get_tokenizer, special_id
from sample import check_settings, sample


def generate(model, rt, enc, prompts: list[list[int]], gen_len, block_len, steps, temperature=0.0,
             batch_size=64, pinned=None, seed=0, desc="sampling", **sample_kw):
    """Completions (token id lists) for a list of prompts, in batches (left padding); seed: this call's stream
    (common.stream_seed: the rank's own); sample_kw: sample()'s cache, eos_fill etc."""
    mask_id, eos_id = special_id(enc, MASK), special_id(enc, EOS)
    g = torch.Generator(rt.device).manual_seed(seed)
    out = []
    for i in tqdm(range(0, len(prompts), batch_size), desc=desc, disable=rt.rank != 0, leave=False):
        pins = None if pinned is None else pinned[i:i + batch_size]
        batch = prompts[i:i + batch_size]
        out += sample(model, batch, gen_len, block_len, steps, mask_id, eos_id, temperature, pinned=pins,
                      generator=g, ctx=rt.ctx, **sample_kw).tolist()
    return out


def evaluate(model, rt, task, examples, enc, gen_len, block_len, steps, temperature=0.0, batch_size=64,
             seed=0):
    """Accuracy over `examples` (all ranks take a shard; every rank gets the totals)."""
    mine = examples[rt.rank::rt.world_size]
    prompts = [chat(enc, task.prompt(ex, "eval")) for ex in mine]
    comps = generate(model, rt, enc, prompts, gen_len, block_len, steps, temperature, batch_size,
                     seed=stream_seed(seed, 0, rt.rank, "eval"), desc="eval")
    texts = [decode(enc, c) for c in comps]

    # accuracy by (kind, level): the kind where a task has kinds (the toy's easy and hard problems), else ""
    groups = sorted({(ex.get("kind", ""), ex.get("level", 0)) for ex in examples})
    stats = torch.zeros(len(groups), 2, dtype=torch.float64)  # per group: (correct, count)
    for ex, text in zip(mine, texts):
        verdict = torch.tensor([float(task.correct(text, ex)), 1.0], dtype=torch.float64)  # (correct, count)
        stats[groups.index((ex.get("kind", ""), ex.get("level", 0)))] += verdict
    stats = stats.to(rt.device)
    dist.all_reduce(stats)
    stats = stats.cpu()

    def accuracy(rows):  # rows (k, 2) of (correct, count)
        return (rows[:, 0].sum() / rows[:, 1].sum().clamp(min=1)).item()
    kinds = sorted({k for k, _ in groups if k})
    by_kind = {k: round(accuracy(stats[[g[0] == k for g in groups]]), 4) for k in kinds}
    by_level = {f"{k} {lv}" if k else lv: round(accuracy(stats[i:i + 1]), 3)  # the toy's keys: "hard 3"
                for i, (k, lv) in enumerate(groups)}
    return {"accuracy": accuracy(stats), "by_kind": by_kind, "by_level": by_level, "texts": texts,
            "examples": mine}


def probe_accuracy(model, rt, task, examples, enc, gen_len, block_len, steps):
    """Accuracy on each step's result with everything after it masked: the trace up to the step's '='
    is pinned at the start of the canvas; the result must follow it. A model that learned to copy a
    duplicated result instead of computing it fails this."""
    mask_id = special_id(enc, MASK)
    rows = [(ex, pre, res) for ex in examples[rt.rank::rt.world_size] for pre, res in task.probes(ex)]
    pinned = torch.full((len(rows), gen_len), mask_id, dtype=torch.long)
    for i, (_, pre, _) in enumerate(rows):
        ids = enc.encode_ordinary(pre)
        pinned[i, :len(ids)] = torch.tensor(ids)
    prompts = [chat(enc, task.prompt(ex)) for ex, _, _ in rows]
    comps = generate(model, rt, enc, prompts, gen_len, block_len, steps, pinned=pinned, desc="probes",
                     seed=stream_seed(0, 0, rt.rank, "probes"))
    hits = torch.tensor([0.0, 0.0], dtype=torch.float64, device=rt.device)  # (right, count)
    for (ex, pre, res), c in zip(rows, comps):
        rest = decode(enc, c)[len(pre):]
        right = rest.split("\n")[0].strip() == res  # the line after the pinned prefix is the step's value
        hits += torch.tensor([float(right), 1.0], dtype=torch.float64, device=rt.device)
    dist.all_reduce(hits)
    return (hits[0] / hits[1].clamp(min=1)).item()


# ----------------------------------------------------------------------------------------------------
# the CLI: one checkpoint, one task, one or more generation lengths, resumable
@dataclass
class Config:
    ckpt: str = ""              # checkpoint folder (model.load: model.safetensors + config.json)
    task: str = "toy"           # data.TASKS: toy, gsm8k, math (MATH500), amc, amc23, aime24
    gen_lens: str = ""          # comma-separated generation lengths; "" = 256,512 (toy: 16), IGPO.md A
    block_len: int = 0          # 0 = 32 (toy: 8)
    # denoising steps per gen_len; 0 = gen_len / 2 (d1's protocol, B.8.1; toy: gen_len)
    steps: int = 0
    cache: str = "none"         # approximate KV cache for speed: none (exact), prefix, dual (sample.py)
    refresh: int = 0            # with a cache: also refresh it every k steps (closer to exact, slower)
    k: int = 1                  # samples per problem: 1 = pass@1; AMC's protocol is avg@16 at temperature 0.1
    temperature: float = 0.0    # 0 = greedy
    batch_size: int = 64        # prompts per forward, per rank
    limit: int = 0              # only the first N problems (0 = all), for quick looks
    out_dir: str = ""           # "" = out/eval/<task>
    seed: int = 0
    device: str = ""            # "" = cuda if available, else cpu
    # weights; "" = bfloat16 on CUDA (LLaDA's own: no weight casts every step), else float32
    dtype: str = ""
    # torch.compile the model (toy, 1000 problems on 2 CPU cores: 21.4 s -> 18.0 s)
    compile: bool = False
    eos_fill: bool = False      # the official sampler's early exit (sample.py); the evaluation protocol: off


RULES = dict(  # checked right after parsing, before any loading or writing (common.parse_args)
    task=C.one_of(*TASKS), gen_lens=C.int_list(1, 1 << 20, empty_ok=True), block_len=C.at_least(0),
    steps=C.at_least(0), cache=C.one_of("none", "prefix", "dual"), refresh=C.at_least(0), k=C.at_least(1),
    temperature=C.at_least(0), batch_size=C.at_least(1), limit=C.at_least(0),
    out_dir=((lambda v, c: not os.path.isfile(v)), "a folder, not a file"),  # "": the default
    device=C.DEVICE, dtype=C.one_of("", "float32", "bfloat16"))


def read_records(path: str, rank: int) -> dict:
    """{(id, sample): record} of an earlier run; a line cut short by a crash is dropped (and redone)."""
    recs = {}
    for line in open(path) if os.path.exists(path) else []:
        with contextlib.suppress(json.JSONDecodeError, KeyError, TypeError):
            r = json.loads(line)
            recs[r["id"], r["sample"]] = r
    if rank == 0:  # rewritten without it, so appends start on a fresh line; the rename spares open readers
        M._atomic_write(path, lambda tmp: append(tmp, recs.values()))
    return recs


def append(path: str, recs):
    with open(path, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs)


def main(argv=None):
    cfg = parse_args(Config(), argv, rules=RULES)
    task = get_task(cfg.task)
    if not os.path.isdir(cfg.ckpt):
        raise FileNotFoundError(f"--ckpt={cfg.ckpt!r}: no such checkpoint folder (--ckpt=DIR is required)")
    if cfg.k > 1 and cfg.temperature <= 0:
        raise ValueError(f"--k={cfg.k} needs --temperature > 0: greedy samples of one prompt are all the "
                         "same")
    # the defaults: generation lengths, block length, tokens per step (toy: as sft.py samples)
    gen_lens, block_len, per = ("16", 8, 1) if cfg.task == "toy" else ("256,512", 32, 2)
    lengths = [int(L) for L in (cfg.gen_lens or gen_lens).split(",")]
    plan = [(L, cfg.steps or L // per) for L in lengths]  # (gen_len, steps)
    block_len = cfg.block_len or block_len
    for L, steps in plan:  # divisibility errors before loading an 8B model; prompt lengths are checked below
        check_settings(0, L, block_len, steps, L)
    out_dir = cfg.out_dir or os.path.join("out", "eval", cfg.task)
    rt = setup(cfg.device, cfg.seed)
    state = C.finish_checkpoint(cfg.ckpt, rt)  # never new weights beside an old meta.json
    dtype = cfg.dtype or ("bfloat16" if rt.device.type == "cuda" else "float32")
    # the checkpoint's state too: generations of the folder as it was before a retraining are stale
    settings = dict(ckpt=os.path.abspath(cfg.ckpt), checkpoint_state=state, task=cfg.task,
                    block_len=block_len, steps=cfg.steps, temperature=cfg.temperature, seed=cfg.seed,
                    cache=cfg.cache, refresh=cfg.refresh, dtype=dtype, eos_fill=cfg.eos_fill)
    with C.locked(out_dir, rt):  # one evaluation per folder, as one run per training folder
        return run(cfg, rt, task, plan, out_dir, settings)


def run(cfg: Config, rt, task, plan: list, out_dir: str, settings: dict) -> list[dict]:
    """The evaluation, inside its folder's lock: the settings check, the model, each gen_len's generations."""
    block_len, dtype = settings["block_len"], settings["dtype"]
    p = os.path.join(out_dir, "settings.json")
    if os.path.exists(p) and (old := M.read_json(p)) != settings:
        # resuming into generations made otherwise would mix two protocols, or two models, in one number
        differ = ", ".join(k for k in settings if old.get(k) != settings[k])
        raise ValueError(f"{out_dir} holds generations made with other settings or weights ({differ} "
                         f"differ; {p}): pass another --out_dir")

    # no FSDP: every rank holds the whole model (8B fits one GPU), so ranks never forward in lockstep;
    # only the per-batch gather below is collective, and every rank runs the same number of batches
    model = M.load(cfg.ckpt, rt.device, getattr(torch, dtype)).eval()
    model = torch.compile(model) if cfg.compile else model
    enc = get_tokenizer(model.config.tokenizer)
    mask_id, eos_id = special_id(enc, MASK), special_id(enc, EOS)
    examples = task.load("test")[:cfg.limit or None]
    # toy rows have no id: their index is stable
    ids = [str(ex.get("id", i)) for i, ex in enumerate(examples)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"task {cfg.task}: duplicate problem ids, resuming would skip the wrong problems")
    prompts = [chat(enc, task.prompt(ex, "eval")) for ex in examples]
    for L, steps in plan:
        check_settings(max(map(len, prompts)), L, block_len, steps, model.config.max_seq_len)
    extract = getattr(task, "extract", grader.extract_answer)  # toy's "=N" lines; \boxed{} etc. elsewhere
    if rt.rank == 0:
        M.write_json(os.path.join(out_dir, "settings.json"), settings)
    print0(f"eval {cfg.task} | {len(examples)} problems x {cfg.k} | (gen_len, steps) {plan} | block_len "
           f"{block_len} | world {rt.world_size} | device {rt.device} | {out_dir}")

    results = []
    for L, steps in plan:
        t0, path = time.time(), os.path.join(out_dir, f"generations_{L}.jsonl")
        recs = read_records(path, rt.rank)  # rank 0 appends only after the first gather: all ranks have read
        todo = [(i, j) for i in range(len(examples)) for j in range(cfg.k) if (ids[i], j) not in recs]
        todo.sort(key=lambda t: len(prompts[t[0]]))  # similar lengths share a batch: less left padding
        mine = todo[rt.rank::rt.world_size]  # rank 0's shard is the longest: it sets the batch count
        n_batches = -(-len(todo[0::rt.world_size]) // cfg.batch_size)
        g = torch.Generator(rt.device).manual_seed(stream_seed(cfg.seed, 0, rt.rank, f"eval/{L}"))
        for b in tqdm(range(n_batches), desc=f"{cfg.task} gen_len {L}", disable=rt.rank != 0):
            batch, new = mine[b * cfg.batch_size:(b + 1) * cfg.batch_size], []
            if batch:  # a rank with nothing left still joins the gather
                batch_prompts = [prompts[i] for i, _ in batch]
                comps = sample(model, batch_prompts, L, block_len, steps, mask_id, eos_id, cfg.temperature,
                               generator=g, ctx=rt.ctx, cache=cfg.cache, refresh=cfg.refresh,
                               eos_fill=cfg.eos_fill).tolist()
                for (i, j), c in zip(batch, comps):
                    text, ex = decode(enc, c), examples[i]
                    new.append({"id": ids[i], "sample": j, "question": ex["question"], "answer": ex["answer"],
                                "extracted": extract(text), "correct": bool(task.correct(text, ex)),
                                "text": text})
            parts = [None] * rt.world_size
            dist.all_gather_object(parts, new)
            new = [r for part in parts for r in part]
            recs.update(((r["id"], r["sample"]), r) for r in new)
            if rt.rank == 0:  # appended and closed per batch: a finished batch survives an interruption
                append(path, new)
        hits = [recs[ids[i], j]["correct"] for i in range(len(examples)) for j in range(cfg.k)]
        accuracy = sum(hits) / max(len(hits), 1)
        by_kind = {}  # the toy's easy and hard problems
        for i, ex in enumerate(examples):
            if "kind" in ex:
                by_kind.setdefault(ex["kind"], []).extend(recs[ids[i], j]["correct"] for j in range(cfg.k))
        by_kind = {kd: sum(h) / len(h) for kd, h in sorted(by_kind.items())}
        results.append({"task": cfg.task, "gen_len": L, "n": len(examples), "k": cfg.k, "steps": steps,
                        "accuracy": accuracy, **({"by_kind": by_kind} if by_kind else {}), "new": len(todo),
                        "seconds": round(time.time() - t0, 1)})
    if rt.rank == 0:
        M.write_json(os.path.join(out_dir, "metrics.json"), {"settings": settings, "results": results})
    print0(f"{'task':<8} {'gen_len':>7} {'n':>5} {'k':>3} {'accuracy' if cfg.k == 1 else f'avg@{cfg.k}':>8}")
    for r in results:
        kinds = "".join(f" | {kd} {a:.3f}" for kd, a in r.get("by_kind", {}).items())
        print0(f"{r['task']:<8} {r['gen_len']:>7} {r['n']:>5} {r['k']:>3} {r['accuracy']:>8.3f}{kinds}")
    return results


if __name__ == "__main__":
    run_main(main)
