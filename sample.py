"""
Masked-diffusion sampling: LLaDA's reverse process (IGPO.md B.2.1), with inpainting (B.2.2).
The same function serves RL rollouts, IGPO's hinted re-rollouts and evaluation.

    python sample.py --ckpt=out/sft --prompt="7+2-3+1......"              # print the completion
    python sample.py --ckpt=out/sft --prompt="7+2-3+1......" --show=True  # watch the canvas fill in
"""
import contextlib
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def check_settings(prompt_len: int, gen_len: int, block_len: int, steps: int, max_seq_len: int):
    """The sampler's schedule; scripts call it at start-up (prompt_len 0, max_seq_len gen_len) too."""
    if min(gen_len, block_len, steps) < 1:  # -8 divides 24: a negative block_len would sample nothing
        raise ValueError(f"gen_len={gen_len}, block_len={block_len}, steps={steps}: each must be >= 1")
    if gen_len % block_len:
        raise ValueError(f"gen_len={gen_len} is not divisible by block_len={block_len}")
    n_blocks = gen_len // block_len
    if steps % n_blocks:
        raise ValueError(f"steps={steps} is not divisible by the number of blocks "
                         f"({gen_len}/{block_len}={n_blocks})")
    if prompt_len + gen_len > max_seq_len:
        raise ValueError(f"prompt ({prompt_len} tokens) + gen_len ({gen_len}) exceeds the model's "
                         f"max_seq_len={max_seq_len}")


def num_transfer_tokens(n_masked, steps: int):
    """LLaDA's get_num_transfer_tokens: n_masked (B,) -> (B, steps) tokens to unmask per step,
    floor(n/steps) each, the first n % steps steps one more (front-loaded)."""
    base, rem = n_masked // steps, n_masked % steps
    return base[:, None] + (torch.arange(steps, device=n_masked.device)[None] < rem[:, None]).long()


def left_pad(prompts: list[list[int]], pad_id: int, device):
    """Left-pad prompts of different lengths -> ids (B, P) and pad_mask (B, P) (True at real tokens),
    pad_mask None when every prompt has the same length (no attention mask needed)."""
    P = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), P), pad_id, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, P - len(p):] = torch.tensor(p, dtype=torch.long)
    mask = ids.new_zeros(ids.shape, dtype=torch.bool)
    for i, p in enumerate(prompts):
        mask[i, P - len(p):] = True
    return ids.to(device), (None if all(len(p) == P for p in prompts) else mask.to(device))


class KVCache:
    """Fast-dLLM's KV cache (Wu et al. 2025, arXiv:2505.22618): per layer, the keys and values (B, H, T, D)
    of the whole canvas. A forward of the whole canvas fills it; model(x[:, s:e], pad_mask, kv=cache) with
    cache.start = s computes rows s..e only: each layer writes their fresh k, v over the cached ones and
    attends to all of it, with the whole canvas's pad_mask and RoPE positions. The model calls it once per
    layer, in order, so it counts the layers itself."""

    def __init__(self, n_layer: int):
        self.kv, self.layer, self.start = [None] * n_layer, 0, 0

    def __call__(self, k, v):  # (B, H, T, D) of this forward's rows -> (B, H, T_canvas, D)
        i, s, T = self.layer, self.start, k.shape[2]
        self.layer = (i + 1) % len(self.kv)
        if s == 0 and (self.kv[i] is None or T == self.kv[i][0].shape[2]):  # the whole canvas: a refresh
            self.kv[i] = (k, v)
        else:  # in place, so the cache holds the freshest k, v of every row (Fast-dLLM's replace_position)
            self.kv[i][0][:, :, s:s + T] = k
            self.kv[i][1][:, :, s:s + T] = v
        return self.kv[i]


@torch.no_grad()
def sample(model, prompts: list[list[int]], gen_len: int, block_len: int, steps: int, mask_id: int,
           pad_id: int, temperature: float = 0.0, remasking: str = "low_confidence", pinned=None,
           generator=None, ctx=contextlib.nullcontext(), on_step=None, cache: str = "none", refresh: int = 0,
           threshold: float = 0.0, eos_fill: bool = False):
    """Fill a canvas of gen_len MASKs after each prompt, block by block (semi-autoregressive), as LLaDA's
    generate(): each step unmasks the block's scheduled count of the most confident positions still holding
    MASK up to the block's end (a MASK the model wrote in an earlier block can be filled later).

    pad_id: the left padding, EOS (LLaDA pads with EOS). pinned: optional (B, gen_len) canvas of known tokens
    (mask_id where free). Pinned tokens are never overwritten, never count against a block's budget, and are
    visible to every step. Returns the completions, (B, gen_len) token ids.
    eos_fill: the official IGPO sampler's early exit (utils/generate.py:911-920): once every row's block is
    all EOS, every MASK left (gaps between later hints too) becomes EOS and sampling stops. Off, the schedule
    is fixed; on, a batch may run fewer forwards than another (sharded, call it inside common.gathered()).
    Greedy and exact, a completion does not depend on its batch (size, padding) on CPU in fp32.

    Approximations for speed (Fast-dLLM; off by default, the exact sampler is cache="none", threshold=0):
    cache="prefix": each block's first step forwards the whole canvas and caches every layer's keys/values;
    later steps forward only the current block and the rest of the canvas after it, the prompt and finished
    blocks from the cache. cache="dual": later steps forward the current block only, prefix and suffix
    (with any pinned hints) from the cache. refresh=k > 0 also refreshes every k steps (1: exact).
    threshold > 0: also unmask every masked position of the block whose confidence exceeds it (parallel
    decoding), at least the scheduled count; a block ends when no row has a mask left in it (one host
    sync per step), so the sampler may run fewer forwards than `steps`.
    """
    device = next(model.parameters()).device
    prompt_ids, prompt_mask = left_pad(prompts, pad_id, device)
    B, P = prompt_ids.shape
    check_settings(P, gen_len, block_len, steps, model.config.max_seq_len)
    if remasking not in ("low_confidence", "random"):
        raise ValueError(f"remasking={remasking!r}: expected 'low_confidence' or 'random'")
    if cache not in ("none", "prefix", "dual"):
        raise ValueError(f"cache={cache!r}: expected 'none', 'prefix' or 'dual'")
    kv, T = None if cache == "none" else KVCache(model.config.n_layer), P + gen_len
    canvas = torch.full((B, gen_len), mask_id, dtype=torch.long, device=device)
    if pinned is not None:
        canvas = pinned.to(device).clone()
    x = torch.cat([prompt_ids, canvas], dim=1)  # (B, P + gen_len)
    pad_mask = None if prompt_mask is None else torch.cat([prompt_mask, prompt_mask.new_ones(B, gen_len)], 1)
    n_blocks = gen_len // block_len
    steps_per_block = steps // n_blocks
    for b in range(n_blocks):
        lo, hi = P + b * block_len, P + (b + 1) * block_len
        # pinned positions are not MASK, so they never enter the budget of their block
        n_masked = (x[:, lo:hi] == mask_id).sum(1)  # (B,)
        schedule = num_transfer_tokens(n_masked, steps_per_block)  # (B, steps_per_block)
        # candidates from w on: the first position still MASK in any row (lo, unless the model wrote a MASK)
        first = (x[:, P:hi] == mask_id).any(0).long().argmax()  # 0 when none: then nothing is scheduled
        *active, first = torch.cat([schedule.sum(0), first[None]]).tolist()  # one host sync per block
        w = min(P + first, lo)
        for i in range(steps_per_block):
            if active[i] == 0:  # nothing to unmask in any row (a block full of hints): skip the forward
                continue
            # the whole canvas (and a cache refresh)?
            full = kv is None or i % (refresh or steps_per_block) == 0
            s, e = (0, T) if full else (w, T if cache == "prefix" else hi)  # forward rows s..e
            if kv is not None:
                kv.start = s
            with ctx:
                logits = model(x[:, s:e], pad_mask, out=(w - s, hi - s), kv=kv)  # (B, hi - w, V)
            # float64, as LLaDA's add_gumbel_noise: low-precision Gumbel noise improves perplexity but hurts
            # generation quality (arXiv:2409.02908). The confidence softmax is float64 too, as IGPO's sampler
            # takes it (utils/generate.py:883); LLaDA's generate.py takes it in the logits' dtype (bf16 on a
            # GPU), where more confidences tie
            logits = logits.double()
            probs = F.softmax(logits, dim=-1)  # one exp pass serves the noise and the confidence
            if temperature > 0:
                # Gumbel-max: argmax p / (-log u)^tau == argmax exp(l) / (-log u)^tau (LLaDA's; p is exp(l)
                # over a per-row constant) == argmax l/tau + Gumbel, an exact sample at tau
                u = torch.rand(logits.shape, dtype=torch.float64, device=device, generator=generator)
                x0 = (probs / (-torch.log(u)) ** temperature).argmax(-1)  # (B, hi - w)
            else:
                x0 = logits.argmax(-1)
            if remasking == "low_confidence":  # confidence = untempered probability of the sampled token
                conf = probs.gather(-1, x0[..., None]).squeeze(-1)
            else:
                conf = torch.rand(x0.shape, dtype=torch.float64, device=device, generator=generator)
            masked = x[:, w:hi] == mask_id
            conf = torch.where(masked, conf, -torch.inf)
            # unmask the schedule[:, i] most confident masked positions of each row
            order = conf.argsort(dim=-1, descending=True, stable=True)
            places = torch.arange(hi - w, device=device).expand(B, -1)  # (B, hi - w): 0, 1, 2, ...
            rank = torch.empty_like(order).scatter_(1, order, places)  # each position's place in the order
            take = rank < schedule[:, i:i + 1]
            if threshold > 0:  # earlier steps may have taken more than scheduled: masked positions only
                take = (take | (conf > threshold)) & masked
            x[:, w:hi] = torch.where(take, x0, x[:, w:hi])
            if on_step is not None:
                on_step(x[:, P:])
            if threshold > 0 and not (x[:, w:hi] == mask_id).any():  # the block is done in every row
                break
        if eos_fill and bool((x[:, lo:hi] == pad_id).all()):  # a host sync per block, only with eos_fill
            x[:, P:] = torch.where(x[:, P:] == mask_id, pad_id, x[:, P:])
            break
    return x[:, P:]


# ----------------------------------------------------------------------------------------------------
# the CLI: sample one prompt, optionally watching the canvas fill in around pinned hint tokens
@dataclass
class Config:
    ckpt: str = ""              # checkpoint folder (model.safetensors + config.json)
    prompt: str = "7+2-3+1......"  # the user's question (the chat template is applied); a toy one
    hint: str = ""              # tokens to pin at the canvas start, "_" = one free position, "\\n" = newline
    gen_len: int = 16
    block_len: int = 8
    steps: int = 16
    temperature: float = 0.0
    remasking: str = "low_confidence"
    cache: str = "none"         # "prefix" or "dual": Fast-dLLM's KV cache (an approximation), see sample()
    threshold: float = 0.0      # > 0: also unmask every position more confident than this (parallel decoding)
    show: bool = False          # print the whole canvas after every step, one line per step
    seed: int = 0
    device: str = ""


MASK_CELL, EOS_CELL, NEWLINE_CELL = "\u2591", "\u00b7", "\u21b5"  # what --show prints for [MASK], EOS, "\n"


def hint_canvas_from_text(enc, hint: str, gen_len: int, mask_id: int) -> torch.Tensor:
    """--hint: pinned (1, gen_len) from a template: its text is pinned from position 0 on, each "_"
    leaves one position free ("7\\n_\\n6\\n": pin "7\\n", leave one, pin "\\n6\\n"); the rest is free."""
    ids = []
    for part in re.split(r"(_+)", hint.replace("\\n", "\n")):
        ids += [mask_id] * len(part) if part.startswith("_") else enc.encode_ordinary(part)
    if len(ids) > gen_len:
        raise ValueError(f"--hint is {len(ids)} tokens, longer than --gen_len={gen_len}")
    return torch.tensor(ids + [mask_id] * (gen_len - len(ids)))[None]


def render(enc, canvas: list[int], pinned: list[bool], mask_id: int, eos_id: int) -> str:
    """The canvas position by position: a mask, EOS and newline as one visible character each, every other
    token as its text; runs of pinned (hint) positions wrapped in [[...]], as samples.jsonl marks them. The
    byte tokenizer's lines align column by column (one character a position, the brackets never move)."""
    from data.tokenizer import decode
    out, inside = [], False
    for tok, pin in zip(canvas, pinned):
        if pin != inside:
            out.append("[[" if pin else "]]")
            inside = pin
        out.append(MASK_CELL if tok == mask_id else EOS_CELL if tok == eos_id
                   else decode(enc, [tok]).replace("\n", NEWLINE_CELL))
    return "".join(out + (["]]"] if inside else []))


def main(argv=None):
    from data.tokenizer import EOS, MASK, chat, decode, get_tokenizer, special_id
    import common as C
    from model import load
    rules = dict(ckpt=((lambda v, c: v != ""), "a checkpoint folder (required)"), temperature=C.at_least(0),
                 remasking=C.one_of("low_confidence", "random"), cache=C.one_of("none", "prefix", "dual"),
                 threshold=C.between(0, 1), device=C.DEVICE)
    cfg = C.parse_args(Config(), argv, rules=rules)
    check_settings(0, cfg.gen_len, cfg.block_len, cfg.steps, cfg.gen_len)
    rt = C.setup(cfg.device, cfg.seed)
    C.finish_checkpoint(cfg.ckpt, rt)
    model = load(cfg.ckpt, rt.device, torch.bfloat16 if rt.device.type == "cuda" else torch.float32).eval()
    enc = get_tokenizer(model.config.tokenizer)
    mask_id, eos_id = special_id(enc, MASK), special_id(enc, EOS)
    pinned = hint_canvas_from_text(enc, cfg.hint, cfg.gen_len, mask_id) if cfg.hint else None
    is_pinned = [False] * cfg.gen_len if pinned is None else (pinned[0] != mask_id).tolist()
    n_step = [0]

    def show(canvas):  # one line per sampler step: the whole canvas, masks and hints visible
        n_step[0] += 1
        print(f"{n_step[0]:4d}  {render(enc, canvas[0].tolist(), is_pinned, mask_id, eos_id)}")
    if cfg.show:
        print(f"prompt: {cfg.prompt}")
        start = [mask_id] * cfg.gen_len if pinned is None else pinned[0].tolist()
        print(f"{0:4d}  {render(enc, start, is_pinned, mask_id, eos_id)}")
    g = torch.Generator(rt.device).manual_seed(cfg.seed)
    on_step = show if cfg.show else None
    out = sample(model, [chat(enc, cfg.prompt)], cfg.gen_len, cfg.block_len, cfg.steps, mask_id, eos_id,
                 cfg.temperature, cfg.remasking, pinned=pinned, generator=g, on_step=on_step,
                 cache=cfg.cache, threshold=cfg.threshold, ctx=rt.ctx)
    print(decode(enc, out[0]))


if __name__ == "__main__":
    from common import run_main
    run_main(main)
