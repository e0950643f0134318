"""
Evaluation: sample a task's test split with sample.py, score with the task's reward code (the same
as training), report accuracy. Prompts are sharded across ranks and the results gathered.

    python eval.py --ckpt=out/sft --task=toy
"""
import torch
import torch.distributed as dist
from tqdm import tqdm

from data.tokenizer import EOS, MASK, chat, decode, special_id
from sample import sample


def generate(model, rt, enc, prompts: list[list[int]], gen_len, block_len, steps, temperature=0.0, batch_size=64,
             pinned=None, seed=0, desc="sampling"):
    """Completions (token id lists) for a list of prompts, in batches (left padding)."""
    mask_id, eos_id = special_id(enc, MASK), special_id(enc, EOS)
    g = torch.Generator(rt.device).manual_seed(seed + 1000 * rt.rank)
    out = []
    for i in tqdm(range(0, len(prompts), batch_size), desc=desc, disable=rt.rank != 0, leave=False):
        pins = None if pinned is None else pinned[i:i + batch_size]
        out += sample(model, prompts[i:i + batch_size], gen_len, block_len, steps, mask_id, eos_id, temperature,
                      pinned=pins, generator=g, ctx=rt.ctx).tolist()
    return out


def evaluate(model, rt, task, examples, enc, gen_len, block_len, steps, temperature=0.0, batch_size=64):
    """Accuracy over `examples` (all ranks take a shard; every rank gets the totals)."""
    mine = examples[rt.rank::rt.world_size]
    comps = generate(model, rt, enc, [chat(enc, task.prompt(ex, "eval")) for ex in mine], gen_len, block_len, steps,
                     temperature, batch_size, desc="eval")
    texts = [decode(enc, c) for c in comps]
    levels = sorted({ex.get("level", 0) for ex in examples})
    stats = torch.zeros(len(levels), 2, dtype=torch.float64)  # per level: (correct, count)
    for ex, text in zip(mine, texts):
        stats[levels.index(ex.get("level", 0))] += torch.tensor([float(task.correct(text, ex)), 1.0], dtype=torch.float64)
    stats = stats.to(rt.device)
    dist.all_reduce(stats)
    stats = stats.cpu()
    return {"accuracy": (stats[:, 0].sum() / stats[:, 1].sum().clamp(min=1)).item(),
            "by_level": {lv: round((c / max(n, 1)).item(), 3) for lv, (c, n) in zip(levels, stats)},
            "texts": texts, "examples": mine}


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
    comps = generate(model, rt, enc, [chat(enc, task.prompt(ex)) for ex, _, _ in rows], gen_len, block_len, steps,
                     pinned=pinned, desc="probes")
    hits = torch.tensor([0.0, 0.0], dtype=torch.float64, device=rt.device)
    for (ex, pre, res), c in zip(rows, comps):
        rest = decode(enc, c)[len(pre):]
        hits += torch.tensor([float(rest.split("\n")[0].strip() == res), 1.0], dtype=torch.float64, device=rt.device)
    dist.all_reduce(hits)
    return (hits[0] / hits[1].clamp(min=1)).item()
