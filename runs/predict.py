"""
Predict one IGPO round before measuring it, without a GPU: peak memory per rank and the time split
(rollouts / log-prob forwards / updates) of train_igpo.py, counted from the shapes the code builds.

    python runs/predict.py                  # llada-8b (IGPO.md B.9) and variations: what fits where, and
                                            #   what runs/gpu_check.sh will measure
    python runs/predict.py --all_wrong=0.4 --mfu=0.35 --prompt_len=300     # other assumptions
    python runs/predict.py --check          # the memory accounting vs what CPU runs of the code allocate

Memory: the tensors the code keeps, op by op: weights, adapters, gradients, AdamW states, the frozen
reference copy (full fine-tuning with beta > 0), FSDP2's unsharded copies, what autograd saves in each block
(only each block's input with activation checkpointing), the (rows, L, V) fp32 log-softmax of the estimator
and its backward (rows per rank: the n prompts for mean_field, 2 or K per completion for coupled and elbo),
the sampler's float64 (B, block_len, V) tensors, and the short-lived tensors of the fullest moment of each
phase. Time: model FLOPs / (peak x MFU), never less than reading the weights once per forward,
plus HBM time for the vocabulary-sized float64/fp32 elementwise work. --check runs the real sampler, estimator
and update() at small shapes on CPU and compares with the live tensor bytes they allocate.
"""
import argparse
import contextlib
import dataclasses
import math
import os
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from model import PRESETS as MODELS, ModelConfig  # noqa: E402
from train_igpo import PRESETS as RUNS, Config as RunConfig  # noqa: E402

GiB = 2**30
# total memory as CUDA reports it, dense bf16 FLOP/s, HBM bytes/s, NCCL all-gather bus bandwidth over NVLink
GPUS = {"H200": (139.8 * GiB, 989e12, 4.8e12, 350e9), "A100-80GB": (79.2 * GiB, 312e12, 2.0e12, 230e9)}
LINEARS = {"q_proj": "CC", "k_proj": "CC", "v_proj": "CC", "attn_out": "CC", "ff_proj": "CH", "up_proj": "CH",
           "ff_out": "HC"}  # a block's linears: (in, out) features, C = n_embd, H = mlp_hidden


@dataclass
class Shape:
    """One round's setting: the model and train_igpo's Config, plus what the code leaves to the run."""
    mc: ModelConfig
    rc: RunConfig
    world: int = 1               # GPUs (FSDP2 ranks)
    gpu: str = "H200"
    prompt_len: int = 200        # padded prompt tokens: MetaMathQA question + system prompt + chat template
    device: str = "cuda"         # cuda: bf16 autocast (rt.ctx), FSDP2's bf16 mixed precision, fused AdamW
    autocast: bool = True        # --check on cpu: torch.autocast("cpu", bf16) stands in for CUDA's
    rollout_batch: int = 64      # rows per sampler call: eval.generate's batch_size, which rollouts() keeps
    all_wrong: float = 0.2       # expected fraction of all-wrong groups (re-rolled with G hinted rows each)

    def __post_init__(self):
        mc, rc = self.mc, self.rc
        self.n = rc.prompts_per_step // self.world  # distinct prompts per rank
        # the estimator's rows per rank in a log-prob forward and in update()'s: mean_field one per prompt,
        # coupled 2 per completion, elbo K per completion
        per_completion = {"mean_field": 0, "coupled": 2, "elbo": rc.estimator_samples}[rc.estimator]
        self.rows = self.n * rc.group_size * per_completion or self.n
        self.G, self.L, self.P, self.V = rc.group_size, rc.gen_len, self.prompt_len, mc.vocab_size
        self.T, self.C, self.H, self.nl = self.P + self.L, mc.n_embd, mc.mlp_hidden, mc.n_layer
        self.hd, self.nh = self.C // mc.n_head, mc.n_head
        self.wb = 2 if rc.dtype == "bfloat16" else 4  # bytes per stored parameter (--dtype)
        self.mp = self.device == "cuda" and self.world > 1  # model.shard: FSDP2 unshards parameters in bf16
        self.ab = 2 if self.mp else self.wb           # the residual stream: the embedding's output dtype
        self.c = 2 if self.autocast else self.ab      # matmul outputs
        self.ld = 2 if self.mp else 4                 # adapters in compute (fp32 parameters, apply_lora)
        self.lora = rc.lora_r > 0
        t = rc.lora_targets
        self.targets = set(LINEARS if t == "all" else t.split(",")) if self.lora else set()
        self.dims = {k: tuple(dict(C=self.C, H=self.H)[d] for d in v) for k, v in LINEARS.items()}
        if self.ab == 2 and not self.autocast:
            raise ValueError("bf16 weights without autocast: not a path of the code")

    @property
    def block_params(self):
        return sum(i * o for i, o in self.dims.values()) + 2 * self.C  # + the two RMSNorm gains

    @property
    def block_lora(self):
        return sum(self.rc.lora_r * sum(self.dims[t]) for t in self.targets)

    @property
    def params(self):  # without adapters: blocks, embedding, head, final norm
        return self.nl * self.block_params + 2 * self.V * self.C + self.C

    @property
    def trainable(self):
        return self.nl * self.block_lora if self.lora else self.params

    @property
    def trainable_bytes(self):  # adapters are fp32; full fine-tuning trains the weights in their dtype
        return self.trainable * (4 if self.lora else self.wb)


# ----------------------------------------------------------------------------------------------------
# memory that stays all round (per rank)

def static_memory(s: Shape) -> dict:
    """Weights, adapters, AdamW states (from the first step on), the reference copy: bytes per rank."""
    W = s.world
    out = {"weights": s.params * s.wb / W}
    if s.lora:
        out["adapters (fp32)"] = s.nl * s.block_lora * 4 / W
    n_tensors = s.nl * 2 * len(s.targets) if s.lora else s.nl * 9 + 3
    out["AdamW states"] = 2 * s.trainable_bytes / W + 4 * n_tensors  # exp_avg, exp_avg_sq; a step scalar each
    if not s.lora and s.rc.beta > 0:  # train_igpo: the initial model, frozen, as the KL reference
        out["reference copy"] = s.params * s.wb / W
    return out


def cast_cache(s: Shape) -> tuple[float, float]:
    """(per block, head): autocast's bf16 copies of the fp32 parameters it casts (the adapters, or with
    --dtype=float32 every linear weight), cached until the autocast region ends and kept by autograd for the
    backward if it saves them. Under FSDP2's bf16 policy there is nothing to cast."""
    if not s.autocast or s.mp:
        return 0.0, 0.0
    if s.lora:
        return 2.0 * s.block_lora, 0.0
    return (2.0 * (s.block_params - 2 * s.C), 2.0 * s.V * s.C) if s.wb == 4 else (0.0, 0.0)


def cast_total(s: Shape) -> float:
    block, head = cast_cache(s)
    return s.nl * block + head


# ----------------------------------------------------------------------------------------------------
# activations: bytes per token of one block unless said otherwise

def block_saved(s: Shape, x_grad: bool) -> tuple[dict, bool]:
    """What autograd keeps for one block's backward (no checkpointing), bytes per token by tensor, keyed
    "attn:..." or "mlp:..."; a tensor that several ops save counts once. x_grad: whether the block's input
    requires grad (not block 0's under LoRA: the embedding is frozen). -> (saved, output requires grad)."""
    C, c, ab, full, saved = s.C, s.c, s.ab, not s.lora, {}

    def norm(part, x_grad):  # RMSNorm: x.float() (x itself when fp32), kept by pow and by * rsqrt(...) (N, 1)
        if x_grad:
            saved[part + "xf"] = 4 * C + 4
        if full:  # weight * normed keeps normed for the gain's gradient
            saved[part + "normed"] = ab * C
        return x_grad or full

    def linear(part, name, src, src_bytes, n_in, grad_in):  # -> whether the output requires grad
        if full:  # the weight's gradient needs the input (autocast's bf16 copy of an fp32 input)
            if s.autocast and src_bytes == 4:
                saved[part + name + ".cast"] = 2 * n_in
            else:
                saved[part + src] = src_bytes * n_in
        if name in s.targets:  # LoRA: x.to(A.dtype) [-> autocast's bf16 copy] kept for A's grad, x A for B's
            if s.autocast and s.ld == 4:
                saved[part + name + ".lora_cast"] = 2 * n_in
            elif src_bytes != s.ld:
                saved[part + name + ".lora_in"] = s.ld * n_in
            else:
                saved[part + src] = src_bytes * n_in
            saved[part + name + ".xA"] = (2 if s.autocast else s.ld) * s.rc.lora_r
        return grad_in or full or name in s.targets

    g = norm("attn:", x_grad)
    qkv = [linear("attn:", p, "n", ab, C, g) for p in ("q_proj", "k_proj", "v_proj")]
    if any(qkv):  # SDPA (flash kernels) keeps q, k (after RoPE), v, the output and a (B, H, T) fp32 logsumexp
        saved.update({f"attn:{k}": c * C for k in ("q", "k", "v", "out")}, **{"attn:lse": 4 * s.nh})
    # (B, H, T, D) -> (B, T, C) for attn_out: a view of CUDA's flash output, a copy on CPU
    a = linear("attn:", "attn_out", "out" if s.device == "cuda" else "out.reshape", c, C, any(qkv))
    g = norm("mlp:", x_grad or a)
    gate = linear("mlp:", "ff_proj", "n", ab, C, g)
    up = linear("mlp:", "up_proj", "n", ab, C, g)
    if gate:
        saved["mlp:gate"] = c * s.H  # silu keeps its input
    if gate or up:  # silu(gate) * up keeps both factors
        saved["mlp:silu"], saved["mlp:up"] = c * s.H, c * s.H
    linear("mlp:", "ff_out", "prod", c, s.H, gate or up)
    return saved, True


def linear_peak(s: Shape, name: str, n_in: int, n_out: int) -> float:
    """Bytes per token one linear allocates at its fullest (its output included), beyond its input."""
    c = s.c
    conv = 2 * n_in if s.autocast and s.ab == 4 else 0  # autocast's bf16 copy of an fp32 input
    if name not in s.targets:
        return conv + c * n_out
    conv += (s.ld * n_in if s.ab != s.ld else 0) + (2 * n_in if s.autocast and s.ld == 4 else 0)
    return max(c * n_out + conv + 4 * s.rc.lora_r, 3 * c * n_out)  # x W, x.to(fp32), casts; x W + x A B, sum


def rope_temps(s: Shape) -> float:  # fp32: x (a copy unless fp32), x cos, cat(-x2, x1), * sin, the sum
    return 16 * s.C if s.c == 2 else 12 * s.C


def block_forward_peak(s: Shape) -> float:
    """Bytes per token live at the fullest moment of one block's forward without grad (sampler, log-prob
    forwards, a checkpointed block's first pass) beyond the block's input: the largest of its stages. q, k,
    v and the attention output stay bound in Block.forward until it returns; n until ff_norm's replaces it."""
    C, H, c, ab = s.C, s.H, s.c, s.ab
    norm = (4 * C if ab == 2 else 0) + 4 * C + ab * C  # fp32 x, x * rsqrt, the normed output
    keep, qkv = 4 * c * C, ("q_proj", "k_proj", "v_proj")
    return max(norm,
               ab * C + max(linear_peak(s, p, C, C) + i * c * C for i, p in enumerate(qkv)),
               ab * C + 4 * c * C + rope_temps(s),  # rope(k): q, k, v, rope(q) and the temporaries
               ab * C + keep + (c * C if s.device == "cpu" else 0) + linear_peak(s, "attn_out", C, C),
               ab * C + keep + ab * C + norm,  # ff_norm
               ab * C + keep + ab * C + c * H + linear_peak(s, "up_proj", C, H),  # silu(gate), then up
               ab * C + keep + ab * C + 3 * c * H) + 4 * s.nh  # silu * up; + the logsumexp


def rope_tables(s: Shape, tokens: float, forward: bool = False) -> float:
    return (3 if forward else 2) * 4 * s.hd * tokens  # cos, sin (B, 1, T, hd) fp32 (+ freqs during forward)


def update_peak(s: Shape) -> dict:
    """One inner step of update(): token_logprobs with grad on the estimator's rows, the per-group loss,
    backward, clip, AdamW. Bytes above static_memory at each candidate moment; the largest is the peak."""
    n, V, C, ab, nl, full, ckpt = s.n, s.V, s.C, s.ab, s.nl, not s.lora, s.rc.grad_ckpt
    N, NL = s.rows * s.T, s.rows * s.L  # tokens through the blocks, completion tokens through the head
    saved, x_grad = [], full  # the embedding is trainable only in full fine-tuning
    for _ in range(nl):
        b, x_grad = block_saved(s, x_grad)
        saved.append(b)
    held = [ab * C * N if ckpt else sum(b.values()) * N for b in saved]  # checkpointing keeps the block input
    common = rope_tables(s, N) + (8 * N if full else 0)  # + the token ids the embedding keeps
    # the head: ln_f keeps an fp32 copy of the completion rows (fp32: a view of the whole last block output)
    head = (4 * C * NL if ab == 2 else 4 * C * N) + 4 * NL
    if full:
        head += ab * C * NL + (2 if s.autocast and ab == 4 else ab) * C * NL  # normed, ff_out's input
    loss = 16 * 4 * n * s.G * s.L  # the per-group loss: about 16 (G, L) fp32 tensors per group
    g_block = (s.block_params * s.wb if full else s.block_lora * 4) / s.world  # sharded gradients under FSDP2
    g_head = (V * C + C) * s.wb / s.world if full else 0
    # autocast's cache lives to the end of the forward; then autograd keeps what it saved: nothing of a
    # checkpointed block until its recomputation
    c_block, c_head = cast_cache(s)
    moments = {
        "forward (last block)": sum(held[:-1]) + ab * C * N + nl * c_block + rope_tables(s, N, forward=True)
        + (block_forward_peak(s) * N if ckpt else max(held[-1], block_forward_peak(s) * N)),
        "forward (log_softmax)": sum(held) + common + head + 8 * V * NL + cast_total(s),  # fp32 logits, logp
        "backward (log_softmax)": sum(held) + common + head + 12 * V * NL + loss  # logp, d logp, d logits
        + c_head + (0 if ckpt else nl * c_block),
    }
    for i in range(nl - 1, -1, -1):  # block i's backward: its saved tensors (recomputed), the grads so far
        b = dict(saved[i])
        if ckpt and ab == 4 and "attn:xf" in b:
            b["attn:xf"] = 4  # in fp32 x.float() is the block input itself, which the checkpoint holds
        # the MLP's backward at silu * up: d prod, d silu, d up and ff_out's weight gradient; prod is freed
        mlp = (sum(b.values()) - b.get("mlp:prod", 0) + ab * C + 3 * s.c * s.H) * N \
            + (s.H * C * s.wb / s.world if full else 0)
        # attention's backward at RoPE: d q, d k, d v and RoPE's fp32 temporaries; SDPA's saved tensors freed
        sdpa = ("attn:q", "attn:k", "attn:v", "attn:out", "attn:lse")
        attn = sum(v for k, v in b.items() if k.startswith("attn:") and k not in sdpa)
        attn = (attn + ab * C + 3 * s.c * C + rope_temps(s)) * N
        grads = g_head + (nl - 1 - i) * g_block
        moments[f"backward (block {i})"] = sum(held[:i]) + (held[i] if ckpt else 0) + common + grads \
            + max(mlp, attn) + (1 if ckpt else i + 1) * c_block
    if full:  # the embedding's backward: every gradient, the embedding output's and the token ids
        moments["backward (embedding)"] = s.trainable_bytes / s.world + ab * C * N + 8 * N
    cpu_adamw = 0 if s.device == "cuda" else 2 * max_param_bytes(s)  # CPU's AdamW is unfused: temporaries
    moments["optimizer step"] = s.trainable_bytes / s.world + cpu_adamw
    if s.world > 1:  # FSDP2: the root's parameters stay unsharded forward to backward; 2 blocks in flight
        extra = (2 * V * C + C + 2 * (s.block_params + s.block_lora)) * 2
        extra += s.block_params * 6 if full else 0  # a block's unsharded bf16 grads + fp32 for reduce-scatter
        moments = {k: v + extra for k, v in moments.items()}
    return moments


def max_param_bytes(s: Shape) -> float:  # CPU AdamW (single tensor): sqrt(v) and its quotient, per parameter
    if s.lora:
        return 4 * max(s.rc.lora_r * max(s.dims[t]) for t in s.targets)
    return s.wb * max(s.V * s.C, max(i * o for i, o in s.dims.values()))


def logp_peak(s: Shape) -> dict:
    """The no-grad old-policy (with entropy) and reference log-prob forwards on the estimator's rows;
    autocast's cache lasts over both (one `with` in train_igpo.main)."""
    N, NL = s.rows * s.T, s.rows * s.L
    blocks = (block_forward_peak(s) + s.ab * s.C + 16) * N + rope_tables(s, N, forward=True)  # + x_in, ids
    out = {"forward (blocks)": blocks,
           "log-softmax + entropy": 12 * s.V * NL + 16 * N}  # log_softmax, exp, exp * log_softmax; ids
    extra = cast_total(s)
    if s.world > 1 and not s.lora and s.rc.beta > 0:  # the sharded reference copy: root + 2 blocks gathered
        extra += (2 * s.V * s.C + s.C + 2 * s.block_params) * 2
    return {k: v + extra for k, v in out.items()}


def rollout_peak(s: Shape, rows: int) -> dict:
    """One sampler forward on `rows` canvases (the previous step's float64 logits, probs and noise are still
    bound in sample()'s loop), and the float64 sampling on the current block's logits."""
    N, E = rows * s.T, rows * s.rc.block_len * s.V  # tokens; elements of a (B, block_len, V) tensor
    hot = s.rc.temperature > 0
    canvas = 2 * 8 * N  # the (B, T) canvas and the forward's copy of it
    blocks = (block_forward_peak(s) + s.ab * s.C) * N + rope_tables(s, N, forward=True)
    blocks += s.nl * cast_cache(s)[0]  # autocast's cache lasts one forward here
    return {"forward (blocks)": blocks + canvas + (24 if hot else 16) * E,
            "float64 sampling": (40 if hot else 24) * E + canvas}  # logits, probs, u, -log u, ^t, quotient


def phase_memory(s: Shape) -> dict:
    """Peak bytes per rank of each phase of a round: static + the phase's fullest moment."""
    st = sum(static_memory(s).values())
    gathered = (s.params + s.nl * s.block_lora) * 2 if s.world > 1 else 0.0  # model.gathered(): bf16 (CUDA)
    return {"rollouts": st + gathered + max(rollout_peak(s, min(s.rollout_batch, s.n * s.G)).values()),
            "log-prob forwards": st + gathered + max(logp_peak(s).values()),
            "update": st + max(update_peak(s).values())}


# ----------------------------------------------------------------------------------------------------
# time

def forward_flops(s: Shape, rows: int, tokens: int, out_tokens: int) -> float:
    """Model FLOPs of one forward (bench.py's accounting): 2 per weight per token through the blocks and
    adapters, 2 per head weight per projected token, 4 * n_layer * n_embd * tokens * keys for attention."""
    return rows * (2 * s.nl * (s.block_params + s.block_lora) * tokens + 2 * s.V * s.C * out_tokens
                   + 4 * s.nl * s.C * tokens * tokens)


def sampler_step_time(s: Shape, rows: int, mfu: float, bw_eff: float) -> float:
    """One sample() step on `rows` canvases: a whole-canvas forward (compute, or reading the weights,
    whichever takes longer), then 122 bytes of float64 traffic per (row, block position, vocab entry):
    bf16 -> f64 (10), softmax (24), rand (8), log (16), neg (16), pow (16), quotient (24), argmax (8)."""
    _, peak, bw, _ = GPUS[s.gpu]
    weights = s.params * s.ab + s.nl * s.block_lora * s.ld  # bytes every forward reads once
    fwd = max(forward_flops(s, rows, s.T, s.rc.block_len) / (peak * mfu), weights / (bw * bw_eff))
    return fwd + 122 * rows * s.rc.block_len * s.V / (bw * bw_eff)


def train_step_flops(s: Shape) -> float:
    """update()'s forward + backward on the estimator's rows: a frozen base needs only input gradients (one
    forward's matmuls), full fine-tuning two; attention's backward is two forwards; checkpointing recomputes
    the blocks."""
    n, T = s.rows, s.T
    f_attn, f_lora = 4 * s.nl * s.C * T * T * n, 2 * s.nl * s.block_lora * T * n
    f_blocks, f_head = 2 * s.nl * s.block_params * T * n, 2 * s.V * s.C * s.L * n
    flops = (f_blocks + f_head) * (2 if s.lora else 3) + f_attn * 3 + f_lora * 3
    return flops + ((f_blocks + f_attn + f_lora) if s.rc.grad_ckpt else 0)


def round_time(s: Shape, mfu: float = 0.45, bw_eff: float = 0.8) -> dict:
    """Seconds of one round per phase (a phase waits for its slowest rank), and forwards per rank."""
    _, peak, bw, busbw = GPUS[s.gpu]
    rc, n, W, B, V, L = s.rc, s.n, s.world, s.rollout_batch, s.V, s.L
    comp = lambda flops: flops / (peak * mfu)  # noqa: E731
    mem = lambda nbytes: nbytes / (bw * bw_eff)  # noqa: E731
    gather = (s.params + s.nl * s.block_lora) * 2 * (W - 1) / W / busbw  # FSDP2 all-gathers the model in bf16

    def generate(rows):  # eval.generate: sample() calls of B rows, `steps` steps each
        return sum(rc.steps * sampler_step_time(s, min(B, rows - i), mfu, bw_eff) for i in range(0, rows, B))

    # IGPO: a rank re-rolls G rows per all-wrong group, X ~ Binomial(n, all_wrong); the slowest rank counts
    f = s.all_wrong
    pmf = [math.comb(n, x) * f**x * (1 - f)**(n - x) for x in range(n + 1)]
    cdf = [sum(pmf[:x + 1]) for x in range(n + 1)]
    p_slowest = [cdf[x]**W - (cdf[x - 1]**W if x else 0) for x in range(n + 1)]
    rollouts = generate(n * s.G) + sum(p * generate(s.G * x) for x, p in enumerate(p_slowest)) + gather
    # old (+ entropy: 42 bytes per (rows, L, V) element) and reference (18) forwards of the estimator's rows
    n_old, R = rc.mu if rc.p_mask_prompt > 0 else 1, s.rows
    n_ref = n_old if rc.beta > 0 else 0
    fwd = max(comp(forward_flops(s, R, s.T, L)), mem(s.params * s.ab + s.nl * s.block_lora * s.ld))
    ref_fwd = max(fwd, gather if not s.lora else 0)  # a full-FT reference is sharded: one gather
    logp = n_old * (fwd + mem(42 * R * L * V)) + n_ref * (ref_fwd + mem(18 * R * L * V))
    # update: forward + backward, and 40 bytes per (rows, L, V) element of fp32 head work
    step = comp(train_step_flops(s)) + mem(40 * R * L * V)
    if W > 1:  # all-gathers for forward and backward and an fp32 reduce-scatter, overlapped with compute
        step = max(step, 2 * gather + s.trainable * 4 * (W - 1) / W / busbw)
    step += mem(10 * s.trainable_bytes / W)  # fused AdamW (read p g m v, write p m v) + clip_grad_norm_
    calls = lambda dist: sum(p * math.ceil(s.G * x / B) for x, p in enumerate(dist))  # noqa: E731
    return {"rollouts": rollouts, "log-prob": logp, "update": rc.mu * step,
            "rollout forwards": math.ceil(n * s.G / B) * rc.steps, "inpaint forwards": calls(pmf) * rc.steps,
            "inpaint forwards, slowest rank": calls(p_slowest) * rc.steps,
            "log-prob forwards": n_old + n_ref, "update forward+backward": rc.mu}


def gpu_check_predictions(mfu: float = 0.45, bw_eff: float = 0.8) -> list[str]:
    """What runs/gpu_check.sh measures on one H200, predicted: bench.py --preset=llada-8b's exact sampler and
    training rows, one per estimator (random bf16 weights, 8 rows, prompt 200; elbo K = 2 as in bench.py), and
    the one IGPO step (1 toy prompt of 22 tokens, random weights: its group is all wrong and re-rolled with
    hints)."""
    mc, base = MODELS["llada-8b"], dataclasses.replace(RunConfig(), **RUNS["llada-8b"])
    bench = Shape(mc, dataclasses.replace(base, lora_r=0, prompts_per_step=1, grad_ckpt=False))
    weights = bench.params * 2
    sampler_peak = weights + max(rollout_peak(bench, 8).values())
    step = sampler_step_time(bench, 8, mfu, bw_eff)
    _, peak, bw, _ = GPUS["H200"]
    train = []
    for name, estimator, K in ESTIMATORS:
        b = Shape(mc, dataclasses.replace(bench.rc, estimator=estimator, estimator_samples=K))
        train_peak = weights + max(v for k, v in update_peak(b).items() if k != "optimizer step")
        train_s = train_step_flops(b) / (peak * mfu) + 40 * b.rows * b.L * b.V / (bw * bw_eff)
        train.append(f"{name} {1e3 * train_s:.0f} ms, peak {train_peak / GiB:.1f} GiB")
    one = Shape(mc, dataclasses.replace(base, prompts_per_step=1), prompt_len=22, all_wrong=1.0)
    t = round_time(one, mfu, bw_eff)
    # max_memory_allocated counts from the start: init_weights draws each weight in fp32 and scales it
    init = one.params * one.wb + 2 * 4 * one.V * one.C
    mem_gb = max(init, max(phase_memory(one).values())) / 1e9
    tokens_per_s = 8 * bench.L / (step * bench.rc.steps)
    return [f"- bench.py (b) exact sampler: {1e3 * step:.0f} ms/step, {tokens_per_s:.0f} tokens/s, "
            f"peak {sampler_peak / GiB:.1f} GiB",
            "- bench.py training rows (token_logprobs forward + backward, every weight trainable, no "
            f"checkpointing): {'; '.join(train)}",
            f"- one IGPO step (LoRA r=128): mem_gb {mem_gb:.1f} (weight init's fp32 draws: "
            f"{init / 1e9:.1f}; the round: {max(phase_memory(one).values()) / 1e9:.1f}), rollout_s "
            f"{t['rollouts']:.0f} (8 rows, then 8 hinted), logp_s {t['log-prob']:.2f}, "
            f"train_s {t['update']:.2f}; the first step also pays CUDA's warm-up"]


# ----------------------------------------------------------------------------------------------------
# --check: small shapes on CPU, through the code itself

def live_bytes_mode():
    """A TorchDispatchMode counting the bytes of each storage an op allocates while it is active, until the
    storage is freed, and their peak (a view or an in-place result aliases an input: not counted). Like
    torch's MemTracker (which refuses frozen parameters and repeated calls of one module), it cannot see a
    kernel's internal workspace."""
    import weakref
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves
    from torch.utils.weak import WeakIdKeyDictionary

    class LiveBytes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.live = self.peak = 0
            self.seen = WeakIdKeyDictionary()

        def _free(self, nbytes):
            self.live -= nbytes

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
            ins = {t.untyped_storage().data_ptr() for t in tensors}
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.device.type != "meta":  # meta tensors take no memory
                    st = t.untyped_storage()
                    if st.nbytes() and st.data_ptr() not in ins and st not in self.seen:
                        self.seen[st] = st.nbytes()
                        self.live += st.nbytes()
                        self.peak = max(self.peak, self.live)
                        weakref.finalize(st, self._free, st.nbytes())
            return out
    return LiveBytes()


def measure(s: Shape, seed: int = 0) -> dict:
    """Build s's model on CPU and run what train_igpo.main runs: the old/reference log-prob forwards, update()
    (mu = 1), its estimator forward + backward alone, and sample(). Returns the static tensors' bytes, counted
    exactly after one optimizer step, and each phase's peak of live tensor bytes above them (live_bytes_mode;
    the update also with torch's MemTracker in full fine-tuning)."""
    import types
    import torch
    import model as M
    from sample import sample
    from train_igpo import mask_seeds, policy_loss, token_logprobs, update
    net = M.build(s.mc, "cpu", seed, torch.bfloat16 if s.wb == 2 else torch.float32)
    if s.lora:
        M.apply_lora(net, s.rc.lora_r, s.rc.lora_alpha, 0.0, sorted(s.targets))
    net.grad_ckpt = s.rc.grad_ckpt
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.1)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if s.autocast else contextlib.nullcontext()
    rt = types.SimpleNamespace(ctx=ctx, device=torch.device("cpu"), rank=0, world_size=1)
    V, G, L, mask_id, pad_id = s.V, s.G, s.L, s.V - 1, s.V - 2
    gen = torch.Generator().manual_seed(seed)
    prompts = torch.randint(0, V - 2, (s.n, s.P), generator=gen).tolist()
    comps = torch.randint(0, V - 2, (s.n * G, L), generator=gen)
    adv, keep = torch.randn(s.n * G, generator=gen), torch.ones(s.n * G, L)
    rc = dataclasses.replace(s.rc, mu=1)
    # update()'s masks for step 0: the old and reference log-probs see the masks the update does, as in a run
    est = dict(estimator=rc.estimator, samples=rc.estimator_samples, seed=mask_seeds(rc, 0, 0)[0])

    def logps():
        with torch.no_grad(), ctx:
            olds = [token_logprobs(net, prompts, pad_id, mask_id, L, comps, G, with_entropy=True, **est)]
            with M.lora_off(net) if s.lora else contextlib.nullcontext():
                refs = [token_logprobs(net, prompts, pad_id, mask_id, L, comps, G, **est)]
        return olds, refs

    def step():
        update(net, opt, rt, prompts, comps, olds, refs, adv, keep, rc, 0, pad_id, mask_id)

    def forward_backward():  # update()'s inner step up to the backward
        with ctx:
            logp = token_logprobs(net, prompts, pad_id, mask_id, L, comps, G, **est)
        groups = [slice(g * G, (g + 1) * G) for g in range(s.n)]
        loss = [policy_loss(logp[g], olds[0][0][g], refs[0][g], adv[g], keep[g], rc)[0] for g in groups]
        torch.stack(loss).mean().backward()

    def peak(fn):
        with live_bytes_mode() as mode:
            fn()
        return mode.peak

    olds, refs = logps()
    net.train()
    step()  # the AdamW states exist from here on
    trained = sum(p.nbytes for p in params)
    out = {"weights": sum(p.nbytes for p in net.parameters()) - (trained if s.lora else 0),
           "adapters (fp32)": trained if s.lora else 0,
           "AdamW states": sum(t.nbytes for st in opt.state.values() for t in st.values()),
           "update": peak(step), "estimator forward + backward": peak(forward_backward)}
    opt.zero_grad(set_to_none=True)
    if not s.lora:  # MemTracker hooks every parameter's gradient: it refuses frozen ones
        from torch.distributed._tools.mem_tracker import MemTracker
        mt = MemTracker()
        mt.track_external(net, opt)
        with mt:
            base = mt.get_tracker_snapshot()[torch.device("cpu")]["Total"]
            step()
        out["update (MemTracker)"] = mt.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"] - base
    net.eval()
    out["log-prob forwards"] = peak(logps)
    rows = [p for p in prompts for _ in range(G)][:s.rollout_batch]
    out["rollouts"] = peak(lambda: sample(net, rows, L, s.rc.block_len, s.rc.steps, mask_id, pad_id,
                                          s.rc.temperature, generator=gen, ctx=ctx))
    return out


CHECK_MODELS = {  # tiny as in model.PRESETS; small-ish: small at half width, 2 layers, 4096 vocabulary
    "tiny": MODELS["tiny"],
    "small-ish": dataclasses.replace(MODELS["small"], n_layer=2, n_head=6, n_embd=384, mlp_hidden=1024,
                                     vocab_size=4096),
}
CHECK_MODES = {  # (dtype, lora_r, grad_ckpt, autocast, estimator): CPU's own path; CUDA's dtypes under CPU
    "fp32 full": ("float32", 0, False, False, "mean_field"),  # autocast; elbo with K = 2
    "fp32 full ckpt": ("float32", 0, True, False, "mean_field"),
    "bf16 LoRA": ("bfloat16", 16, False, True, "mean_field"),
    "bf16 LoRA ckpt": ("bfloat16", 16, True, True, "mean_field"),
    "bf16 full ckpt": ("bfloat16", 0, True, True, "mean_field"),
    "fp32 full ckpt autocast": ("float32", 0, True, True, "mean_field"),
    "fp32 full coupled": ("float32", 0, False, False, "coupled"),
    "bf16 LoRA ckpt elbo": ("bfloat16", 16, True, True, "elbo"),
}


def check_shape(model: str, mode: str) -> Shape:
    """2 prompts x G = 4, prompts of 16 (tiny) or 32 tokens, 32 generated in 4 blocks, one step each."""
    dtype, r, ckpt, autocast, estimator = CHECK_MODES[mode]
    rc = dataclasses.replace(RunConfig(), prompts_per_step=2, group_size=4, gen_len=32, block_len=8, steps=4,
                             dtype=dtype, lora_r=r, grad_ckpt=ckpt, beta=0.01, estimator=estimator,
                             estimator_samples=2 if estimator == "elbo" else 1)
    P = 16 if model == "tiny" else 32
    return Shape(CHECK_MODELS[model], rc, prompt_len=P, device="cpu", autocast=autocast)


def check(model: str, mode: str) -> list[tuple]:
    """(what, predicted bytes, measured bytes): the static tensors, and each phase's peak above them."""
    s = check_shape(model, mode)
    meas, st, up = measure(s), static_memory(s), update_peak(s)
    pred = {"weights": st["weights"], "adapters (fp32)": st.get("adapters (fp32)", 0),
            "AdamW states": st["AdamW states"], "update": max(up.values()),
            "update (MemTracker)": max(up.values()),
            "estimator forward + backward": max(v for k, v in up.items() if k != "optimizer step"),
            "log-prob forwards": max(logp_peak(s).values()),
            "rollouts": max(rollout_peak(s, min(s.rollout_batch, s.n * s.G)).values())}
    return [(k, pred[k], meas[k]) for k in pred if k in meas and (pred[k] or meas[k])]


# ----------------------------------------------------------------------------------------------------
# the llada-8b run and its variations

def variations(prompt_len: int = 200, all_wrong: float = 0.2):
    """(label, world, {gpu: Shape}): B.9's run (LoRA r = 128) and full fine-tuning as the preset has it (bf16)
    and with --dtype=float32; gen 256/512 (steps = gen_len / 2, as the official code has it), checkpointing
    on/off, 1 or 8 GPUs."""
    mc, base = MODELS["llada-8b"], dataclasses.replace(RunConfig(), **RUNS["llada-8b"])
    configs = [(f"LoRA r={base.lora_r}", base.lora_r, base.dtype), ("full FT bf16", 0, base.dtype),
               ("full FT fp32", 0, "float32")]
    for gen in (256, 512):
        for name, r, dtype in configs:
            for ckpt in (True, False):
                rc = dataclasses.replace(base, gen_len=gen, steps=gen // 2, lora_r=r, dtype=dtype,
                                         grad_ckpt=ckpt)
                for world in (1, 8):
                    yield (f"{name}, gen {gen}, ckpt {'on' if ckpt else 'off'}", world,
                           {gpu: Shape(mc, rc, world, gpu, prompt_len, all_wrong=all_wrong) for gpu in GPUS})


ESTIMATORS = [("mean_field", "mean_field", 1), ("coupled", "coupled", 1), ("elbo K=2", "elbo", 2)]


def fits(peak: float, gpu: str) -> str:
    """yes: 10% + 2 GiB to spare (allocator rounding and fragmentation, CUDA context, NCCL, kernel
    workspaces); tight: fits only without that margin."""
    cap = GPUS[gpu][0]
    return "yes" if peak * 1.1 + 2 * GiB <= cap else ("tight" if peak <= cap else "no")


ASSUMPTIONS = """\
- Model: model.PRESETS['llada-8b'], {params:.2f}B parameters, vocabulary {V}.
  Run: train_igpo.PRESETS['llada-8b']: {prompts} prompts per round over all ranks, G = {G}, block {block},
  temperature {temp}, mu = {mu}, beta = {beta} (with LoRA the reference is the model with its adapters off),
  LoRA r = {r} on {targets} ({lora:.0f}M fp32 parameters), bf16 weights, activation
  checkpointing. gen 512 runs 256 sampler steps (2 tokens per step, as the official code).
- Prompts: {P} tokens after left padding: a MetaMathQA question (40-150 tokens) plus ~40 tokens of system
  prompt and chat template, padded to the longest of the 8 questions that share a sampler call (--prompt_len).
- Rollouts: eval.generate's 64 rows per sample() call; the exact sampler (rollout_cache none): every step
  forwards the whole canvas and projects the current block to the vocabulary; float64 Gumbel noise.
- IGPO: {f:.0%} of the groups all wrong (--all_wrong), each re-rolled with G hinted rows; a rank's count is
  Binomial(prompts per rank, that fraction) and the phase lasts as long as the slowest rank's.
- CUDA: bf16 autocast; flash or memory-efficient SDPA (no T x T scores; the output's layout makes the head
  merge a view); fused AdamW. 8 GPUs: FSDP2 per block + root, bf16 MixedPrecisionPolicy, fp32 reduce-scatter;
  model.gathered() holds the whole model in bf16 through rollouts and log-prob forwards; in the update the
  root's parameters (embedding, head) stay unsharded and 2 blocks are in flight.
- Full FT as the code does it: with the preset's dtype=bfloat16, weights, gradients and AdamW states are bf16
  (torch's AdamW allocates its states like the parameter), plus a bf16 reference copy; fp32 AdamW states come
  only with --dtype=float32 (fp32 weights, gradients, states and reference; bf16 compute).
- Not counted: CUDA context, NCCL buffers, kernel workspaces, the caching allocator's rounding and
  fragmentation: "yes" leaves 10% + 2 GiB of the GPU free, "tight" fits without that margin.
  train_igpo.py logs mem_gb in 1e9 bytes: 1 GiB = 1.074 GB.
- Time: model FLOPs (bench.py's accounting) at MFU {mfu} of the dense bf16 peak (H200 989, A100 312 TFLOP/s);
  a forward never faster than reading the weights at {bw:.0%} of HBM bandwidth (H200 4.8, A100 2.0 TB/s);
  the vocabulary-sized float64/fp32 elementwise work at that bandwidth. The backward of a frozen base costs
  one forward's matmuls (input gradients only), of full FT two; checkpointing adds a forward of the blocks.
- FSDP2 collectives overlap with compute (NVLink all-gather bus bandwidth: H200 350, A100 230 GB/s). Not
  counted: host work (decoding, grading, hint canvases), evaluation, checkpoints."""


def report(prompt_len: int = 200, all_wrong: float = 0.2, mfu: float = 0.45, bw_eff: float = 0.8) -> str:
    """The markdown: what fits where, forwards per round, where the memory goes, the assumptions."""
    gpus, out = list(GPUS), []
    cols = " | ".join(f"fits {g}? | {g} s/round: rollouts / log-prob / update" for g in gpus)
    out += ["## What fits where: one IGPO round of the llada-8b preset (predicted, not measured)", "",
            f"| config | GPUs | peak GiB/rank | {cols} |", "|---|---|---|" + "---|---|" * len(gpus)]
    headline = {}
    for label, world, shapes in variations(prompt_len, all_wrong):
        peak = max(phase_memory(shapes[gpus[0]]).values())
        cells = []
        for g in gpus:
            t = round_time(shapes[g], mfu, bw_eff)
            cells += [fits(peak, g), f"{t['rollouts']:.0f} / {t['log-prob']:.1f} / {t['update']:.1f}"]
        out.append(f"| {label} | {world} | {peak / GiB:.1f} | " + " | ".join(cells) + " |")
        if label.startswith("LoRA") and label.endswith("ckpt on"):
            headline[(shapes["H200"].L, world)] = shapes["H200"]
    out += ["", "## Forwards per round, per rank (LoRA r=128, ckpt on; the same for every config)", "",
            "| gen | GPUs | prompts/rank | rollout forwards (calls x steps) | inpainting forwards: "
            "mean rank, slowest rank | log-prob forwards | update forward+backward |",
            "|---|---|---|---|---|---|---|"]
    for (gen, world), s in headline.items():
        t = round_time(s, mfu, bw_eff)
        calls = math.ceil(s.n * s.G / s.rollout_batch)
        out.append(f"| {gen} | {world} | {s.n} | {t['rollout forwards']} ({calls} x {s.rc.steps}) | "
                   f"{t['inpaint forwards']:.0f}, {t['inpaint forwards, slowest rank']:.0f} | "
                   f"{t['log-prob forwards']} | {t['update forward+backward']} |")
    out += ["", "## The log-prob estimator (--estimator): LoRA r=128, gen 256, ckpt on", "",
            f"| estimator | GPUs | rows per forward, per rank | peak GiB/rank | {cols} |",
            "|---|---|---|---|" + "---|---|" * len(gpus)]
    for world in (1, 8):
        for name, estimator, K in ESTIMATORS:
            rc = dataclasses.replace(headline[(256, world)].rc, estimator=estimator, estimator_samples=K)
            shapes = {g: Shape(s.mc, rc, world, g, prompt_len, all_wrong=all_wrong) for g in gpus}
            peak = max(phase_memory(shapes[gpus[0]]).values())
            cells = []
            for g in gpus:
                t = round_time(shapes[g], mfu, bw_eff)
                cells += [fits(peak, g), f"{t['rollouts']:.0f} / {t['log-prob']:.1f} / {t['update']:.1f}"]
            rows = shapes[gpus[0]].rows
            out.append(f"| {name} | {world} | {rows} | {peak / GiB:.1f} | " + " | ".join(cells) + " |")
    for world in (1, 8):
        s = headline[(256, world)]
        out += ["", f"## Where the memory goes: LoRA r=128, gen 256, ckpt on, {world} GPU(s); GiB/rank", ""]
        out.append("- static: " + ", ".join(f"{k} {v / GiB:.2f}" for k, v in static_memory(s).items()))
        if world > 1:
            gathered = (s.params + s.nl * s.block_lora) * 2 / GiB
            out.append(f"- model.gathered() in rollouts and log-prob forwards: all in bf16, {gathered:.2f}")
        rows = min(s.rollout_batch, s.n * s.G)
        for phase, moments in (("rollouts", rollout_peak(s, rows)), ("log-prob forwards", logp_peak(s)),
                               ("update", update_peak(s))):
            top = sorted(moments.items(), key=lambda kv: -kv[1])[:3]
            out.append(f"- {phase}: peak {phase_memory(s)[phase] / GiB:.1f}; above static at its fullest "
                       "moments: " + ", ".join(f"{k} {v / GiB:.2f}" for k, v in top))
    out += ["", "## What runs/gpu_check.sh will measure on one H200, predicted", ""]
    out += gpu_check_predictions(mfu, bw_eff)
    s = headline[(256, 1)]
    out += ["", "## Assumptions", "", ASSUMPTIONS.format(
        params=s.params / 1e9, V=s.V, prompts=s.rc.prompts_per_step, G=s.G, block=s.rc.block_len,
        temp=s.rc.temperature, mu=s.rc.mu, beta=s.rc.beta, r=s.rc.lora_r, targets=s.rc.lora_targets,
        lora=s.nl * s.block_lora / 1e6, P=prompt_len, f=all_wrong, mfu=mfu, bw=bw_eff)]
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Predict an IGPO round's peak memory and time split (no GPU).")
    ap.add_argument("--check", action="store_true", help="compare the memory accounting with CPU runs")
    ap.add_argument("--prompt_len", type=int, default=200, help="padded prompt tokens")
    ap.add_argument("--all_wrong", type=float, default=0.2, help="expected fraction of all-wrong groups")
    ap.add_argument("--mfu", type=float, default=0.45, help="model FLOPs utilisation, forward and backward")
    ap.add_argument("--bw_eff", type=float, default=0.8, help="achieved fraction of HBM bandwidth")
    a = ap.parse_args(argv)
    if not a.check:
        print(report(a.prompt_len, a.all_wrong, a.mfu, a.bw_eff))
        return
    import torch
    torch.set_num_threads(1)  # small shapes: one thread is fastest (5x here), as in tests/conftest.py
    print(f"torch {torch.__version__}, CPU, MiB = 2^20 bytes. Static: the tensors' bytes after one optimizer "
          "step; phases: the peak of live tensor bytes above them.\n")
    print("| model | mode | what | predicted MiB | measured MiB | predicted / measured |")
    print("|---|---|---|---|---|---|")
    for model in CHECK_MODELS:
        for mode in CHECK_MODES:
            for what, p, m in check(model, mode):
                print(f"| {model} | {mode} | {what} | {p / 2**20:.3f} | {m / 2**20:.3f} | {p / m:.3f} |")


if __name__ == "__main__":
    main()
