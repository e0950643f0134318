"""
GRPO and IGPO (Inpainting-Guided Policy Optimization, arXiv 2509.10396) for masked-diffusion LMs.

    python train_igpo.py --preset=tiny                                # toy task on a CPU, from out/sft
    python train_igpo.py --preset=tiny --inpaint=False                # GRPO: the same loop, no hints
    torchrun --standalone --nproc_per_node=8 train_igpo.py --preset=llada-8b --init_from=DIR

One round: prompts for this rank -> G rollouts each (sample.py) -> rewards (the task's grader) ->
IGPO: every group whose G rollouts are all wrong is re-sampled with chunks of the ground-truth trace
pinned in the canvas, and up to floor(lambda*G) wrong rollouts are replaced by correct inpainted ones
-> group advantages -> old/reference log-probs (--estimator: d1's mean-field one, one forward per distinct
prompt; or coupled masks, or a Monte Carlo ELBO, 2 or K forwards per completion) -> mu optimizer steps -> log,
eval, checkpoint. Paper semantics by default; every way the official code differs is a flag
(the README lists them).
"""
import contextlib
import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.nn.functional as F

import common as C
import model as M
from common import (Runtime, gathered, kept_log, load_optimizer, locked, parse_args, print0, resume_point,
                    run_main, save_checkpoint, setup, shard, stream_seed, wandb_logger)
from data import TASKS, arith, files, get_task, grader
from data.tokenizer import EOS, MASK, chat, decode, get_tokenizer, special_id
from eval import evaluate, generate
from sample import check_settings, left_pad


@dataclass
class Config:
    preset: str = "tiny"          # model + training preset (PRESETS below)
    task: str = "toy"
    eval_task: str = ""           # held-out evaluation task ("" = task's own test split)
    init_from: str = "out/sft"    # checkpoint folder to start from (the SFT output)
    out_dir: str = "out/igpo"
    inpaint: bool = True          # IGPO; False = plain GRPO
    max_steps: int = 60           # rollout rounds
    prompts_per_step: int = 16    # distinct prompts per round, over all ranks
    group_size: int = 8           # G rollouts per prompt
    mu: int = 4                   # optimizer steps per round on the same rollouts (old log-probs frozen)
    # tiny, toy hard problems: 3e-4 makes every arm forget the easy problems on some seeds (README)
    lr: float = 1e-4
    warmup: int = 2               # linear warmup (rounds; optimizer steps with lr_schedule=linear)
    weight_decay: float = 0.1
    grad_clip: float = 0.2
    beta: float = 0.01            # k3 KL to the reference (initial) policy; 0 = no reference forward
    eps_low: float = 0.2          # clip range [1 - eps_low, 1 + eps_high]
    eps_high: float = 0.2
    ratio: str = "sequence"       # "sequence" (GSPO, the headline run) or "token" (GRPO)
    std_norm: bool = False        # divide advantages by the group std
    p_mask_prompt: float = 0.0    # d1: mask prompt tokens in the log-prob forward with this probability
    estimator: str = "mean_field"  # the policy log-probs (token_logprobs): mean_field (d1's), coupled, elbo
    estimator_samples: int = 1    # elbo: K masked forwards per completion, their masking ratios stratified
    gen_len: int = 16
    block_len: int = 8
    steps: int = 16               # sampler steps
    temperature: float = 1.2      # rollouts (B.9); evaluation is greedy
    remasking: str = "low_confidence"
    rollout_cache: str = "none"   # rollouts' approximate KV cache (prefix, dual; sample.py): faster, opt-in
    rollout_refresh: int = 0      # with a cache: also refresh it every k sampler steps
    eta_low: float = 0.2          # hint fraction eta ~ U[eta_low, eta_high] per inpainted rollout
    eta_high: float = 0.6
    chunk_min: int = 5            # hint chunks of chunk_min..chunk_max tokens
    chunk_max: int = 10
    replace_frac: float = 0.5     # lambda: replace at most floor(lambda * G) wrong rollouts
    entropy_keep: float = 0.2     # of each sample's hint positions keep the top fraction by entropy
    # the official code's deviations from the paper (IGPO.md B.5.4, B.10), all off by default
    hint_with_answer: bool = False   # hints: "<reasoning>\n" + the raw MetaMathQA response (the answer in it)
    hint_stretch: bool = False       # stretched placement (x<=1.5, gaps<=100) and a 30-token free tail
    hint_reveal_last: bool = False   # reveal N - floor((1-eta)N) chunks plus always the last one
    hint_rechunk: bool = False       # chunk the trace anew for each inpainted rollout (paper: once per group)
    ratio_all_positions: bool = False  # GSPO ratio averaged over all positions, not the kept ones
    reward: str = "ours"             # "official": the first \boxed{} only, by string (grader.official_reward)
    lr_schedule: str = "constant"    # "linear": HF's (the official): warmup optimizer steps, then decay to 0
    eos_fill: bool = False           # rollouts: the official sampler's early exit (sample.py)
    # where ours is the official code's and the paper or d1 differ
    loss_agg: str = "token"          # token mean within each group; "sequence": each row's, then the mean
    completion_mask: bool = False    # d1: positions after the first EOS leave the loss, KL and GSPO mean
    # toy task: the RL prompts' levels and kinds (data/arith.py: hard = big steps SFT never saw), half each
    levels: str = "1,2,3,4,5,6"
    kinds: str = "easy,hard"
    eval_interval: int = 30
    n_eval: int = 1000            # toy: 500 easy, 500 hard
    eval_k: int = 0               # also sampled accuracy: mean over eval_k samples a problem at temperature 1
    ckpt_interval: int = 10       # rounds between checkpoints (and one at the end); 0 = never save
    resume: bool = False
    overwrite: bool = False       # out_dir holds a run: move it to OUT_DIR.old1 (.old2, ...) and start anew
    seed: int = 1337
    device: str = ""
    dtype: str = "float32"        # parameters: float32, or bfloat16 (the 8B: 16 GB of weights)
    grad_ckpt: bool = False       # activation checkpointing per block
    lora_r: int = 0               # LoRA rank; 0 = full fine-tuning (with a frozen copy as the KL reference)
    lora_alpha: float = 64.0
    # the official 0.05 makes the ratio != 1 at the first inner step (IGPO.md B.10.10)
    lora_dropout: float = 0.0
    # the official run's effective set (B.9); "all" = every linear
    lora_targets: str = "q_proj,k_proj,v_proj,up_proj"
    wandb: bool = False           # also log to Weights & Biases (imported only then; not in requirements.txt)
    wandb_project: str = "nano-igpo"


PRESETS = {
    # toy traces are 3..13 tokens: 5..10-token chunks would leave most of them without a single hint;
    # chunks of one token are about the paper's share of a trace (5..10 of ~250 tokens) at the toy's scale.
    # beta 0.1: the KL to the SFT model on the easy prompts holds the easy skill (at 0.01 one seed's easy
    # accuracy fell 0.994 -> 0.886 in 60 rounds, README). The coupled estimator: in 60 rounds from SFT seeds 1
    # and 2 it took hard sampled accuracy to 0.667 / 0.361 (GRPO) and 0.700 / 0.505 (IGPO) against the
    # mean-field one's 0.447 / 0.275 and 0.511 / 0.348 (README, Results). Sampled accuracy (eval_k) is the
    # toy's headline metric.
    "tiny": dict(chunk_min=1, chunk_max=1, beta=0.1, estimator="coupled", n_eval=500, eval_k=4,
                 eval_interval=20),
    "llada-8b": dict(task="metamath", eval_task="gsm8k", init_from="", prompts_per_step=64, lr=5e-7,
                     warmup=50, max_steps=2000, gen_len=256, block_len=32, steps=128, temperature=1.2,
                     eval_interval=100, n_eval=500,
                     ckpt_interval=96, grad_ckpt=True, seed=3, dtype="bfloat16", lora_r=128, lora_alpha=64.0),
}
RULES = dict(  # checked right after parsing, before any work or writing (common.parse_args)
    task=C.one_of(*TASKS), eval_task=C.one_of("", *TASKS), out_dir=C.FOLDER, max_steps=C.at_least(1),
    prompts_per_step=C.at_least(1), mu=C.at_least(1), lr=C.at_least(0), warmup=C.at_least(0),
    group_size=C.at_least(2),  # advantages are rewards minus the group mean: one rollout alone has none
    weight_decay=C.at_least(0), grad_clip=C.at_least(0), beta=C.at_least(0), eps_low=C.between(0, 1),
    eps_high=C.at_least(0), ratio=C.one_of("sequence", "token"), p_mask_prompt=C.between(0, 1),
    estimator=C.one_of("mean_field", "coupled", "elbo"),
    estimator_samples=((lambda v, c: v == 1 or v > 1 and c.estimator == "elbo"), "1, or more with elbo"),
    temperature=C.at_least(0), remasking=C.one_of("low_confidence", "random"),
    rollout_cache=C.one_of("none", "prefix", "dual"), rollout_refresh=C.at_least(0), eta_low=C.between(0, 1),
    eta_high=((lambda v, c: c.eta_low <= v <= 1), "in [--eta_low, 1]"), chunk_min=C.at_least(1),
    chunk_max=((lambda v, c: v >= c.chunk_min), ">= --chunk_min"), replace_frac=C.between(0, 1),
    entropy_keep=C.between(0, 1), levels=C.int_list(1, arith.MAX_LEVEL), eval_interval=C.at_least(1),
    kinds=((lambda v, c: set(v.split(",")) <= set(arith.KINDS)), f"comma-separated, from {arith.KINDS}"),
    n_eval=C.at_least(0), eval_k=C.at_least(0), ckpt_interval=C.at_least(0), device=C.DEVICE,
    dtype=C.one_of("float32", "bfloat16"),
    lora_r=C.at_least(0), lora_alpha=C.at_least(0), lora_dropout=C.between(0, 1), lora_targets=C.LORA_TARGETS,
    reward=C.one_of("ours", "official"), lr_schedule=C.one_of("constant", "linear"),
    loss_agg=C.one_of("token", "sequence"), wandb=C.WANDB, overwrite=C.OVERWRITE)


# ----------------------------------------------------------------------------------------------------
# small pure functions

def group_advantages(rewards, std_norm: bool = False, eps: float = 1e-4):
    """rewards (n, G) -> advantages (n, G): reward minus the group mean (IGPO/d1: no std division)."""
    adv = rewards - rewards.mean(1, keepdim=True)
    return adv / (rewards.std(1, keepdim=True) + eps) if std_norm else adv


def hint_chunks(n_tokens: int, rng: random.Random, lo: int, hi: int) -> list[tuple[int, int]]:
    """Cut [0, n_tokens) into contiguous chunks of lo..hi tokens; a remainder under lo is dropped."""
    chunks, i = [], 0
    while n_tokens - i >= lo:
        c = min(rng.randint(lo, hi), n_tokens - i)
        chunks.append((i, i + c))
        i += c
    return chunks


def hint_room(gen_len: int, cfg: Config) -> int:
    return gen_len - 30 if cfg.hint_stretch else gen_len  # the official code never hints the last 30 slots


def hint_canvas(trace_ids: list[int], chunks: list[tuple[int, int]], gen_len: int, eta: float,
                rng: random.Random, cfg: Config, mask_id: int):
    """IGPO's hint canvas (IGPO.md B.5, Eq. 4): floor(eta * N) of the trace's N chunks (hint_chunks) revealed
    at their trace positions -> pinned (gen_len,) with mask_id where free."""
    pinned = torch.full((gen_len,), mask_id, dtype=torch.long)
    if not chunks:
        return pinned
    N, limit = len(chunks), hint_room(gen_len, cfg)
    if cfg.hint_reveal_last:  # official: hide floor((1-eta)N), and the last chunk is always shown
        shown = set(range(N)) - set(rng.sample(range(N), int(N * (1 - eta)))) | {N - 1}
    else:
        shown = set(rng.sample(range(N), int(eta * N)))
    stretch = min(max(limit / len(trace_ids), 1.0), 1.5) if cfg.hint_stretch else 1.0
    end, prev = 0, None  # end of the last placed chunk in the canvas; original end of the last shown chunk
    for j in sorted(shown):
        s, e = chunks[j]
        # official placement (B.2.3): first chunk at s*stretch, then the hidden gaps stretched, capped at 100
        if cfg.hint_stretch:
            start = int(s * stretch) if prev is None else end + min(int((s - prev) * stretch), 100)
        else:
            start = s
        prev, stop = e, min(start + e - s, limit)
        if start < stop:
            pinned[start:stop] = torch.tensor(trace_ids[s:s + stop - start])
            end = stop
    return pinned


def entropy_filter(hint_mask, entropy, keep: float):
    """Loss mask (B, L): all self-generated positions, and of each row's hint positions only the top
    max(1, int(keep * |H|)) by entropy (highest first). hint_mask (B, L) bool, entropy (B, L)."""
    m = ~hint_mask
    for b in torch.nonzero(hint_mask.any(1)).flatten().tolist():
        pos = torch.nonzero(hint_mask[b]).flatten()
        k = max(1, int(keep * len(pos)))
        m[b, pos[entropy[b, pos].topk(k).indices]] = True
    return m


def completion_masks(N: int, L: int, estimator: str, samples: int, g, device):
    """The masked forwards of coupled and elbo over N completions of L tokens -> masks (D, N, L) bool (True:
    masked in draw d) and weights (D, N, 1): a token's estimate is sum_d weight_d 1[masked in d] log p_d.
    coupled (DiffuCoder's coupled sampling): t ~ U(0, 1) per completion; draw A masks round(t L) positions at
    random, draw B the others: every position is masked exactly once, weight 1.
    elbo (LLaDA's ELBO in its Eq. 14 form; K = samples): t_k = (k + u_k) / K, u_k ~ U(0, 1) per completion
    (stratified over the K draws); draw k masks exactly l_k = ceil(t_k L) positions at random (l_k is uniform
    on 1..L over the strata, never 0), weight 1 / (K t) with t = l_k / L: the mean over draws of
    1[masked] log p / t, unbiased for each token's ELBO term; summed over tokens, for the ELBO of
    log pi(o | prompt)."""
    D = 2 if estimator == "coupled" else samples
    shape = (1 if estimator == "coupled" else D, N, L)
    rank = torch.rand(shape, generator=g, device=device).argsort(-1).argsort(-1)  # random position order
    if estimator == "coupled":
        a = rank[0] < (torch.rand(N, 1, generator=g, device=device) * L).round()  # (N, L)
        return torch.stack([a, ~a]), torch.ones(2, N, 1, device=device)
    t = (torch.arange(D, device=device)[:, None, None] + torch.rand(D, N, 1, generator=g, device=device)) / D
    n_masked = (t * L).ceil().clamp(min=1)  # (D, N, 1); u_k can be 0
    return rank < n_masked, L / (n_masked * D)


def token_logprobs(model, prompts, pad_id, mask_id, gen_len, completions, group_size, p_mask_prompt=0.0,
                   seed=0, with_entropy=False, estimator="mean_field", samples=1):
    """Per-token log-prob estimates (n*G, L) of the n*G completions (README: "The log-probability estimator"),
    and with_entropy each position's predictive entropy (n*G, L), no grad, for the entropy filter. seed: the
    generator of the prompt mask (d1's p_mask_prompt) and of the completion masks: one seed, the same masks.
    mean_field (d1's one-step estimate, IGPO.md B.3): log pi(o_k | prompt, all of the completion masked). The
    forward input does not depend on the completion, so all G completions of a prompt share one forward:
    n distinct prompts -> logits (n, L, V) -> gather the (n*G, L) completion tokens.
    coupled, elbo: D = 2 or K forwards per completion (completion_masks), batched into one call of D*n*G rows:
    a token's log-prob and entropy come from the forwards where it is masked (elbo: weighted, its mean)."""
    ids, pad_mask = left_pad(prompts, pad_id, completions.device)
    g = torch.Generator(ids.device).manual_seed(seed)
    if p_mask_prompt > 0:  # the same random prompt mask for every completion of the prompt
        hit = torch.rand(ids.shape, generator=g, device=ids.device) < p_mask_prompt
        ids = torch.where(hit & (pad_mask if pad_mask is not None else True), mask_id, ids)
    n, P = ids.shape
    if estimator == "mean_field":
        canvas = torch.full((n, gen_len), mask_id, device=ids.device)  # (n, L)
    else:  # each completion D times, its own tokens where a draw leaves them visible
        masks, weights = completion_masks(n * group_size, gen_len, estimator, samples, g, ids.device)
        canvas = torch.where(masks, mask_id, completions).flatten(0, 1)  # (D*n*G, L)
        rows = torch.arange(n, device=ids.device).repeat_interleave(group_size).repeat(len(masks))
        ids, pad_mask = ids[rows], None if pad_mask is None else pad_mask[rows]  # each row's prompt
    B = len(canvas)
    x = torch.cat([ids, canvas], 1)
    full_mask = None if pad_mask is None else torch.cat([pad_mask, pad_mask.new_ones(B, gen_len)], 1)
    logp = F.log_softmax(model(x, full_mask, out=(P, P + gen_len)).float(), -1)  # (B, L, V)
    if estimator == "mean_field":
        idx = completions.view(n, group_size, gen_len).transpose(1, 2)  # (n, L, G)
        # (n*G, L), no G-fold copy of V
        out = logp.gather(-1, idx).transpose(1, 2).reshape(n * group_size, gen_len)
    else:
        tok = logp.gather(-1, completions.repeat(len(masks), 1)[..., None]).view(masks.shape)  # (D, n*G, L)
        out = (torch.where(masks, tok, 0.0) * weights).sum(0)  # (n*G, L)
    if not with_entropy:
        return out
    ent = -(logp.exp() * logp).sum(-1).detach()  # (B, L), no grad: only the entropy filter needs it
    if estimator == "mean_field":
        return out, ent.repeat_interleave(group_size, 0)
    # the mean over the forwards where the position is masked (coupled: the one); 0 where none is (elbo)
    return out, (ent.view(masks.shape) * masks).sum(0) / masks.sum(0).clamp(min=1)


def upto_eos(comps, eos_id: int):
    """d1's completion mask (B, L) bool: the positions up to and including the first EOS (all when none)."""
    is_eos = comps == eos_id
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), comps.shape[1])  # (B,)
    return torch.arange(comps.shape[1], device=comps.device) <= first[:, None]


def policy_loss(logp, old_logp, ref_logp, adv, m, cfg: Config, valid=None):
    """Clipped surrogate + beta * k3 KL over the kept positions m (IGPO.md B.4): a token mean over all of them
    (the official code), or with loss_agg="sequence" each row's mean, then the mean over the rows (the
    paper's Eq. 3/5; a row with nothing kept adds 0). logp/old_logp/ref_logp (B, L), adv (B,), m (B, L) float;
    valid (B, L) float: the positions that count at all (d1's completion mask), None = all.
    Returns loss, kl, clip fraction, each aggregated alike."""
    if cfg.ratio == "sequence":  # GSPO: one ratio per sequence, exp of the mean log-ratio
        w = m if not cfg.ratio_all_positions else torch.ones_like(m) if valid is None else valid
        ratio = torch.exp(((logp - old_logp) * w).sum(1) / w.sum(1).clamp(min=1))[:, None].expand_as(logp)
    else:
        ratio = torch.exp(logp - old_logp)
    a = adv[:, None]
    clipped = ratio.clamp(1 - cfg.eps_low, 1 + cfg.eps_high)
    per_tok = -torch.min(ratio * a, clipped * a)
    kl = torch.zeros_like(logp)
    if ref_logp is not None:
        d = ref_logp - logp
        kl = torch.exp(d) - d - 1  # k3 estimator, >= 0
        per_tok = per_tok + cfg.beta * kl
    if cfg.loss_agg == "sequence":
        weight = m / m.sum(1, keepdim=True).clamp(min=1) / m.shape[0]  # (B, L)
    else:
        weight = m / m.sum().clamp(min=1)
    return (per_tok * weight).sum(), (kl * weight).sum(), ((ratio != clipped).float() * weight).sum()


def lr_at(k: int, cfg: Config) -> float:
    """The lr of optimizer step k (mu per round). constant (ours): linear warmup over `warmup` rounds, then
    flat. linear (the official, HF's get_linear_schedule_with_warmup, B.9): k / warmup over the first
    `warmup` optimizer steps (0 at the first), then a straight line to 0 at max_steps * mu."""
    if cfg.lr_schedule == "constant":
        return cfg.lr * min(1.0, (k // cfg.mu + 1) / max(1, cfg.warmup))
    total = cfg.max_steps * cfg.mu
    if k < cfg.warmup:
        return cfg.lr * k / max(1, cfg.warmup)
    return cfg.lr * max(0.0, (total - k) / max(1, total - cfg.warmup))


def graded(task, reward: str):
    """The task as training scores it: its own grader ("ours", which evaluation uses too), or "official":
    IGPO's reward_func.py (grader.official_reward: 3.0 for the first \\boxed{} equal as a string after the
    official normalisation, plus the format terms), whose correctness then drives the all-wrong trigger and
    the replacement too. Official only for tasks graded by data/grader.py: the toy task has no box."""
    if reward == "ours":
        return task
    if reward != "official":
        raise ValueError(f"--reward={reward}: expected ours or official")
    if getattr(task, "reward", None) is not files.reward:
        raise ValueError(f"--reward=official grades \\boxed{{}} answers; task {task.__name__} has none "
                         "(--reward=ours)")
    correct = lambda text, ex: grader.official_correct(text, ex["answer"])  # noqa: E731
    reward = lambda text, ex: grader.official_reward(text, ex["answer"])  # noqa: E731
    return SimpleNamespace(**{**vars(task), "correct": correct, "reward": reward})


def draw_prompts(n_train: int, n: int, kinds: int, seed: int, step: int) -> list[int]:
    """A round's n prompt indices: a function of (seed, step) only (so --resume continues exactly), alike on
    every rank. The toy's train split alternates its kinds (arith.load), so drawing runs of `kinds` adjacent
    rows gives every round equal shares of each kind: half of the toy's groups are hard in every round."""
    rng = random.Random(stream_seed(seed, step, -1, "prompts"))
    return [j * kinds + r for j in rng.sample(range(n_train // kinds), n // kinds) for r in range(kinds)]


def mask_seeds(cfg: Config, step: int, rank: int) -> list[int]:
    """The seeds of a round's log-prob masks (token_logprobs: d1's prompt mask, the completion masks of
    coupled and elbo): one per inner iteration when prompts are masked (d1 draws anew each), else one for the
    round. An inner iteration's old, reference and new log-probs take the same seed, so the same masks."""
    n = cfg.mu if cfg.p_mask_prompt > 0 else 1
    return [stream_seed(cfg.seed, step, rank, f"prompt_mask/{it}") for it in range(n)]


def rollouts(model, rt, task, enc, exs, prompts, cfg: Config, rng: random.Random, step: int) -> dict:
    """G rollouts per prompt, scored; then IGPO: every group whose G rollouts are all wrong is re-sampled
    with hint chunks pinned (G inpainted rollouts), and up to floor(replace_frac * G) of its (wrong)
    rollouts are replaced by correct inpainted ones. rng: the round's hint stream (chunks, eta, choices).
    Returns completions (n*G, L), rewards/correct (n, G), hint_mask (n*G, L), decoded texts (hints
    marked), and IGPO's counters."""
    G, L, mask_id = cfg.group_size, cfg.gen_len, special_id(enc, MASK)
    rows = [p for p in prompts for _ in range(G)]  # groups are contiguous rows
    # sample()'s remasking rule, approximate KV cache and the official early exit
    kw = dict(remasking=cfg.remasking, cache=cfg.rollout_cache, refresh=cfg.rollout_refresh,
              eos_fill=cfg.eos_fill)
    sampled = generate(model, rt, enc, rows, L, cfg.block_len, cfg.steps, cfg.temperature,
                       seed=stream_seed(cfg.seed, step, rt.rank, "rollouts"), desc="rollouts", **kw)
    comps = torch.tensor(sampled, device=rt.device)  # (n*G, L)
    texts = [decode(enc, c) for c in comps.tolist()]
    correct = torch.tensor([task.correct(t, exs[i // G]) for i, t in enumerate(texts)]).view(-1, G)
    scores = [task.reward(t, exs[i // G]) for i, t in enumerate(texts)]
    rewards = torch.tensor(scores, dtype=torch.float).view(-1, G)  # (n, G)
    hint_mask = torch.zeros(len(rows), L, dtype=torch.bool, device=rt.device)
    all_wrong = ~correct.any(1)  # the trigger: correctness only (format rewards are ignored)
    groups = torch.nonzero(all_wrong).flatten().tolist() if cfg.inpaint else []
    n_replaced, hint_fracs = 0, []
    if groups:
        pins, lo, hi = [], cfg.chunk_min, cfg.chunk_max
        # the official hint text; the toy task has none of its own: its whole target, answer included
        official = getattr(task, "official_hint", task.target)
        for g in groups:
            trace = enc.encode_ordinary(official(exs[g]) if cfg.hint_with_answer else task.hint(exs[g]))
            n = min(len(trace), hint_room(L, cfg))
            etas = sorted(rng.uniform(cfg.eta_low, cfg.eta_high) for _ in range(G))
            once = None if cfg.hint_rechunk else hint_chunks(n, rng, lo, hi)  # the paper: one cut per group
            for eta in etas:
                chunks = once if once is not None else hint_chunks(n, rng, lo, hi)  # official: per rollout
                pins.append(hint_canvas(trace, chunks, L, eta, rng, cfg, mask_id))
        pins = torch.stack(pins)  # (len(groups)*G, L)
        hint_fracs = (pins != mask_id).float().mean(1).tolist()
        inp_rows = [prompts[g] for g in groups for _ in range(G)]
        inp = generate(model, rt, enc, inp_rows, L, cfg.block_len, cfg.steps, cfg.temperature, pinned=pins,
                       seed=stream_seed(cfg.seed, step, rt.rank, "inpaint"), desc="inpaint", **kw)
        inp_texts = [decode(enc, c) for c in inp]  # decoded once: scored here, rewarded below
        for k, g in enumerate(groups):
            ok = [j for j in range(G) if task.correct(inp_texts[k * G + j], exs[g])]
            # correct inpainted rollouts only
            chosen = rng.sample(ok, min(len(ok), int(cfg.replace_frac * G)))
            for slot, j in enumerate(chosen):  # all G rollouts are wrong: overwrite slots 0..K-1
                r, c = g * G + slot, inp[k * G + j]
                comps[r] = torch.tensor(c, device=rt.device)
                hint_mask[r] = pins[k * G + j].to(rt.device) != mask_id
                correct[g, slot], rewards[g, slot] = True, task.reward(inp_texts[k * G + j], exs[g])
                texts[r] = mark_hints(enc, c, hint_mask[r].tolist())
            n_replaced += len(chosen)
    return dict(comps=comps, rewards=rewards, correct=correct, hint_mask=hint_mask, texts=texts,
                all_wrong=all_wrong, n_replaced=n_replaced, hint_fracs=hint_fracs)


def update(model, opt, rt, prompts, comps, olds, refs, adv, keep, cfg: Config, step: int, pad_id: int,
           mask_id: int, valid=None):
    """mu optimizer steps on one round's rollouts. olds/refs: per prompt-mask seed (mask_seeds), (old logp,
    entropy) and ref logp (n*G, L); keep (n*G, L) the kept positions, valid d1's completion mask or None. The
    loss is aggregated within each group (policy_loss), then averaged over groups (IGPO.md B.4); each rank
    averages its own groups and FSDP averages the ranks. Returns (loss, kl, clip frac), grad norm."""
    G, n_old, seeds = cfg.group_size, len(olds), mask_seeds(cfg, step, rt.rank)
    stats = torch.zeros(3, device=rt.device)
    torch.manual_seed(stream_seed(cfg.seed, step, rt.rank, "dropout"))  # LoRA dropout draws from torch's own
    for it in range(cfg.mu):
        for group in opt.param_groups:
            group["lr"] = lr_at(step * cfg.mu + it, cfg)
        with rt.ctx:
            logp = token_logprobs(model, prompts, pad_id, mask_id, cfg.gen_len, comps, G, cfg.p_mask_prompt,
                                  seeds[it % n_old], estimator=cfg.estimator, samples=cfg.estimator_samples)
        per_group = []
        for g in range(len(prompts)):
            s = slice(g * G, (g + 1) * G)
            ref = None if refs is None else refs[it % n_old][s]
            old = olds[it % n_old][0][s]  # (G, L); olds[...][1] is the entropy
            loss = policy_loss(logp[s], old, ref, adv[s], keep[s], cfg, None if valid is None else valid[s])
            per_group.append(torch.stack(loss))
        out = torch.stack(per_group).mean(0)
        out[0].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip).item()
        if not math.isfinite(gnorm):  # diverged: the caller stops the run (the norm is alike on every rank)
            return out.detach(), gnorm
        opt.step()
        opt.zero_grad(set_to_none=True)
        stats += out.detach() / cfg.mu
    return stats, gnorm


def mark_hints(enc, comp: list[int], hint: list[bool]) -> str:
    """Decode a rollout with its pinned hint tokens wrapped in [[...]] (for samples.jsonl)."""
    out, run, cur = [], [], False
    for tok, h in list(zip(comp, hint)) + [(None, not cur)]:
        if h != cur and run:
            text = decode(enc, run)
            out.append(f"[[{text}]]" if cur and text else text)
            run = []
        cur = h
        if tok is not None:
            run.append(tok)
    return "".join(out)


# ----------------------------------------------------------------------------------------------------
def main(argv=None):
    cfg = parse_args(Config(), argv, PRESETS, RULES)
    check_settings(0, cfg.gen_len, cfg.block_len, cfg.steps, cfg.gen_len)  # the sampler's schedule
    rt = setup(cfg.device, cfg.seed)
    # derived settings, checked once
    if cfg.task == "toy" and cfg.prompts_per_step % len(cfg.kinds.split(",")):
        raise ValueError(f"--prompts_per_step={cfg.prompts_per_step} must divide by the number of --kinds "
                         f"({cfg.kinds}): every round draws equal shares of each")
    if cfg.prompts_per_step % rt.world_size:
        raise ValueError(f"--prompts_per_step={cfg.prompts_per_step} must divide by the world size "
                         f"({rt.world_size})")
    with locked(cfg.out_dir, rt):  # one run per folder
        return train_loop(cfg, rt)


def train_loop(cfg: Config, rt: Runtime) -> dict:
    """The run, inside its folder's lock: resume point, model, data, steps, summary."""
    task = graded(get_task(cfg.task), cfg.reward)  # the training reward: ours or the official one
    n_local, G, L = cfg.prompts_per_step // rt.world_size, cfg.group_size, cfg.gen_len
    # the fingerprint of the folder the run starts from (its KL reference): a resume refuses a changed one
    init_state = C.finish_checkpoint(cfg.init_from, rt) if cfg.init_from else None
    start = resume_point(cfg, rt, init_state) if cfg.resume else C.new_run(cfg, rt)
    resume = start > 0

    dtype = getattr(torch, cfg.dtype)

    def initial_model():  # the SFT checkpoint (ours or a Hugging Face LLaDA folder), or random weights
        return M.load(cfg.init_from, rt.device, dtype) if cfg.init_from else \
            M.build(M.PRESETS[cfg.preset], rt.device, cfg.seed, dtype)
    model = M.load(cfg.out_dir, rt.device, dtype) if resume and not cfg.lora_r else initial_model()
    if cfg.lora_r:  # frozen base + adapters; resuming reloads the adapters only
        targets = "all" if cfg.lora_targets == "all" else cfg.lora_targets.split(",")
        M.apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, targets, seed=cfg.seed)
        if resume:
            M.load_lora(model, cfg.out_dir)
    # the KL reference is the frozen initial policy: with LoRA the same model with its adapters off (no second
    # copy of the weights), else a frozen copy
    ref = initial_model().requires_grad_(False).eval() if cfg.beta > 0 and not cfg.lora_r else None
    model.grad_ckpt = cfg.grad_ckpt
    model, ref = shard(model, rt), (shard(ref, rt) if ref is not None else None)
    enc = get_tokenizer(model.config.tokenizer)
    mask_id, eos_id = special_id(enc, MASK), special_id(enc, EOS)
    toy = dict(levels=tuple(int(v) for v in cfg.levels.split(",")), kinds=tuple(cfg.kinds.split(",")))
    kw = toy if cfg.task == "toy" else {}
    n_kinds = len(kw.get("kinds", ())) or 1  # draw_prompts: equal shares of the toy's kinds per round
    eval_task = get_task(cfg.eval_task or cfg.task)
    train, test = task.load("train", **kw), eval_task.load("test")[: cfg.n_eval]
    if len(train) < cfg.prompts_per_step:  # each round draws distinct prompts
        raise ValueError(f"--prompts_per_step={cfg.prompts_per_step}: task {cfg.task} has {len(train)} "
                         "training prompts")
    # every prompt fits the model with its gen_len tokens: checked before the first rollout
    lengths = [len(chat(enc, task.prompt(ex, "train"))) for ex in train]
    longest = max(lengths + [len(chat(enc, eval_task.prompt(ex, "eval"))) for ex in test])
    check_settings(longest, L, cfg.block_len, cfg.steps, model.config.max_seq_len)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, betas=(0.9, 0.99),
                            weight_decay=cfg.weight_decay, fused=rt.device.type == "cuda")
    if resume:  # optimizer state is per rank: resuming needs the same world size
        load_optimizer(opt, cfg.out_dir, rt.rank)
    print0(f"config: {json.dumps(dataclasses.asdict(cfg))}")
    n_params = sum(p.numel() for p in model.parameters())
    resumed = f" | resumed at step {start}" if resume else ""
    print0(f"world {rt.world_size} | device {rt.device} | params {n_params:,} | "
           f"{len(train)} train prompts | torch {torch.__version__}" + resumed)
    history = kept_log(cfg.out_dir, start, rt)  # the log rows up to the checkpoint's step, when resuming
    if rt.rank == 0:
        M.write_json(os.path.join(cfg.out_dir, "run_config.json"), dataclasses.asdict(cfg))
    to_wandb = wandb_logger(cfg, rt)

    def log(name, rec):
        if name == "log.jsonl":  # as the file will read back: the summary covers a resumed run's whole log
            history.append(json.loads(json.dumps(rec)))
            to_wandb(rec)
        if rt.rank == 0:
            with open(os.path.join(cfg.out_dir, name), "a") as f:
                f.write(json.dumps(rec) + "\n")

    def run_eval(step):
        model.eval()
        with gathered(model):  # ranks hold different numbers of test problems
            res = evaluate(model, rt, eval_task, test, enc, L, cfg.block_len, cfg.steps)
            seen = sum(r.get("rollouts", 0) for r in history)  # rollouts sampled so far: a curve's x
            rec = {"step": step, "eval_accuracy": res["accuracy"], "eval_by_kind": res["by_kind"],
                   "eval_by_level": res["by_level"], "rollouts_seen": seen}
            if cfg.eval_k:  # avg@k: each problem eval_k times at temperature 1 (moves before greedy flips)
                s = evaluate(model, rt, eval_task, test * cfg.eval_k, enc, L, cfg.block_len, cfg.steps, 1.0,
                             seed=stream_seed(cfg.seed, step, -1, "eval_sampled"))
                rec.update(eval_sampled=s["accuracy"], eval_sampled_by_kind=s["by_kind"])
        kinds = f" | by kind {res['by_kind']}" if res["by_kind"] else ""
        sampled = f" | sampled (avg@{cfg.eval_k}) {rec['eval_sampled_by_kind']}" if cfg.eval_k else ""
        print0(f"eval step {step} | accuracy {res['accuracy']:.3f}{kinds} | by level {res['by_level']}"
               + sampled)
        log("log.jsonl", rec)
        return res

    if not resume:  # a resumed run has its evaluations before the checkpoint in its log
        run_eval(start)
    t_start = time.time()
    for step in range(start, cfg.max_steps):
        t0 = time.time()
        # ---- prompts for this rank
        picks = draw_prompts(len(train), cfg.prompts_per_step, n_kinds, cfg.seed, step)
        exs = [train[i] for i in picks[rt.rank * n_local:(rt.rank + 1) * n_local]]
        rng = random.Random(stream_seed(cfg.seed, step, rt.rank, "hints"))
        prompts = [chat(enc, task.prompt(ex, "train")) for ex in exs]
        model.eval()
        # ranks re-roll different numbers of all-wrong groups: `gathered` keeps the weights unsharded so
        # uneven forward counts cannot deadlock FSDP (STYLE.md 3.4), instead of padding to lockstep
        with gathered(model):
            r = rollouts(model, rt, task, enc, exs, prompts, cfg, rng, step)
            comps, rewards, correct = r["comps"], r["rewards"], r["correct"]
            hint_mask, texts = r["hint_mask"], r["texts"]
            t_gen = time.time() - t0  # sampling (and scoring) only: the completions have come to the host
            adv = group_advantages(rewards, cfg.std_norm).flatten().to(rt.device)  # (n*G,)
            # ---- old and reference log-probs, frozen for the mu updates: one forward (mean_field: of the n
            # distinct prompts; coupled, elbo: of 2 or K rows per completion) per mask seed
            seeds = mask_seeds(cfg, step, rt.rank)  # d1: one prompt mask per inner iteration
            logp_args = (prompts, eos_id, mask_id, L, comps, G, cfg.p_mask_prompt)  # all but model and seed
            est = dict(estimator=cfg.estimator, samples=cfg.estimator_samples)
            with torch.no_grad(), rt.ctx:
                olds = [token_logprobs(model, *logp_args, seed, with_entropy=True, **est) for seed in seeds]
                with M.lora_off(model) if cfg.lora_r else contextlib.nullcontext():
                    refs = None
                    if cfg.beta > 0:
                        refs = [token_logprobs(ref or model, *logp_args, seed, **est) for seed in seeds]
        keep = entropy_filter(hint_mask, olds[0][1], cfg.entropy_keep).float()  # (n*G, L)
        valid = upto_eos(comps, eos_id).float() if cfg.completion_mask else None  # d1's completion mask
        keep = keep if valid is None else keep * valid
        t_roll = time.time() - t0  # + the old/reference log-prob forwards (the entropy filter waits for them)
        # ---- mu optimizer steps on this round's rollouts
        model.train()
        stats, gnorm = update(model, opt, rt, prompts, comps, olds, refs, adv, keep, cfg, step, eos_id,
                              mask_id, valid)
        lr = lr_at(step * cfg.mu, cfg)  # logged: the lr of the round's first optimizer step
        t_train = time.time() - t0 - t_roll
        # ---- metrics over all ranks
        n_inp = len(r["hint_fracs"])
        n_tokens = (len(prompts) * G + n_inp) * L  # sampled this round: rollouts and inpainted re-rollouts
        # sums over this rank's groups: reward, accuracy, all wrong, all wrong after inpainting, replaced,
        # hint fraction (over inpainted rollouts), inpainted rollouts, prompts, sampled tokens
        sums = torch.tensor([rewards.mean(1).sum(), correct.float().mean(1).sum(),
                             r["all_wrong"].float().sum(), (~correct.any(1)).float().sum(), r["n_replaced"],
                             sum(r["hint_fracs"]), n_inp, len(prompts), n_tokens],
                            dtype=torch.float64, device=rt.device)
        dist.all_reduce(sums)
        dist.all_reduce(stats, op=dist.ReduceOp.AVG)  # a NaN on any rank: on every rank
        if not (math.isfinite(gnorm) and stats.isfinite().all()):  # before this round is logged or saved
            raise C.diverged(step + 1, cfg.out_dir, loss=stats[0].item(), kl=stats[1].item(), grad_norm=gnorm)
        n = sums[7].item()
        rec = {"step": step + 1, "reward": sums[0].item() / n, "accuracy": sums[1].item() / n,
               "all_wrong": sums[2].item() / n, "all_wrong_after": sums[3].item() / n,
               "replaced": int(sums[4].item()), "hint_frac": sums[5].item() / max(1, sums[6].item()),
               "rollouts": int(n * G + sums[6].item()),  # sampled this round: G a prompt + inpainted ones
               "loss": stats[0].item(), "kl": stats[1].item(), "clip_frac": stats[2].item(),
               "grad_norm": gnorm, "lr": lr, "rollout_s": t_gen, "logp_s": t_roll - t_gen, "train_s": t_train,
               "tok_per_s": sums[8].item() / t_gen,
               "mem_gb": torch.cuda.max_memory_allocated() / 1e9 if rt.device.type == "cuda" else 0.0}
        rec = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in rec.items()}
        print0(" | ".join(f"{k} {v}" for k, v in rec.items()))
        log("log.jsonl", rec)
        done = step + 1 == cfg.max_steps
        if (step + 1) % cfg.eval_interval == 0 or done:
            run_eval(step + 1)
            shown = [i for i in range(len(texts)) if hint_mask[i].any()][:2] + [0, 1]  # inpainted ones first
            for i in dict.fromkeys(shown):  # a few rollouts of this round, hints marked [[...]]
                row = {"step": step + 1, "prompt": task.prompt(exs[i // G]), "rollout": texts[i],
                       "reward": rewards.flatten()[i].item()}
                log("samples.jsonl", row)
        if cfg.ckpt_interval and ((step + 1) % cfg.ckpt_interval == 0 or done):
            # eval.py loads the merged weights
            save_checkpoint(model, opt, cfg.out_dir, step + 1, cfg, rt.rank, init_state)
    # from the log, so that a resumed run sums up all of it, not the rounds since the resume
    evals, rounds = [r for r in history if "eval_accuracy" in r], [r for r in history if "reward" in r]
    first, final, n = (evals or [{}])[0], (evals or [{}])[-1], max(1, len(rounds))
    summary = {"steps": cfg.max_steps, "start_accuracy": first.get("eval_accuracy"),
               "final_accuracy": final.get("eval_accuracy"), "start_by_kind": first.get("eval_by_kind"),
               "final_by_kind": final.get("eval_by_kind"), "final_by_level": final.get("eval_by_level"),
               "wall_seconds": round(time.time() - t_start, 1),
               "mean_all_wrong": sum(r["all_wrong"] for r in rounds) / n,
               "mean_all_wrong_after": sum(r["all_wrong_after"] for r in rounds) / n}
    print0(f"summary: {json.dumps(summary)}")
    if rt.rank == 0:
        M.write_json(os.path.join(cfg.out_dir, "summary.json"), summary)
    return summary


if __name__ == "__main__":
    run_main(main)
