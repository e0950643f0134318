"""
Speed of rollouts and of the training forward + backward, on one device, for one model and one setting:

    python bench.py --preset=tiny                      # CPU: the tiny model, random weights (or --ckpt=DIR)
    python bench.py --preset=llada-8b                  # one GPU: LLaDA-8B's shapes, random bf16 weights,
    python bench.py --preset=llada-8b --compile=True   #   B.9's rollouts (8 = one group, 256 tokens,
                                                       #   block 32, 128 steps)

Sampling rows, all on the same prompts: (a) LLaDA's generate() as written (the whole canvas's logits every
step, float64 Gumbel noise over the whole canvas and vocabulary, the confidence softmax in the logits' dtype,
a per-row top-k), (b) our exact sampler (sample.py: the same tokens as (a) at temperature 0 but where two
confidences tie in the logits' dtype: ours takes that softmax in float64, as IGPO's sampler does;
tests/test_sample.py), (c) the approximations: Fast-dLLM's prefix / dual KV cache and confidence-threshold
parallel decoding (tests/test_cache.py).
ms/step is per forward (threshold decoding runs fewer than `steps`); x ref = speed-up over (a).

Training rows: train_igpo.token_logprobs forward + backward on one group under each --estimator, its rows of
T = prompt + gen_len positions: mean_field 1 (the G completions share one forward), coupled 2 per completion,
elbo K per completion (--estimator_samples); tokens/s = rows x T positions through the model per second,
x mean_field = its time over mean_field's. On CUDA a row that runs out of memory says so.
MFU = model FLOPs per second / the device's dense bf16 peak, with PaLM's accounting per sequence and forward:
2 * (N_blocks * rows + N_head * projected rows) + 4 * n_layer * n_embd * rows * keys (bidirectional
attention: every row sees all keys; the embedding is a lookup, no FLOPs), backward = 2 forwards. For the
samplers, from the shapes each forward gets: (a) all T rows through blocks and head, (b) all T rows through
the blocks, the head on the current block only, (c) fewer rows against T keys.
"""
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import common as C
import model as M
from common import parse_args, print0, run_main, setup
from sample import check_settings, num_transfer_tokens, sample


@dataclass
class Config:
    preset: str = "tiny"        # PRESETS below
    model: str = "tiny"         # a model.PRESETS shape with random weights, unless ckpt
    ckpt: str = ""              # or a checkpoint folder (real confidences: threshold decoding has work to do)
    batch: int = 8              # rollouts per sampler call (B.9: one group of G = 8, the same prompt)
    prompt_len: int = 32
    gen_len: int = 64
    block_len: int = 16
    steps: int = 32
    temperature: float = 1.2    # B.9's rollout temperature
    threshold: float = 0.9      # the threshold rows (Fast-dLLM's default)
    mask_id: int = -1           # -1: the tokenizer's <|mask|>
    pad_id: int = -1            # -1: the tokenizer's EOS
    reference: bool = True      # time (a); at 8B its float64 whole-canvas tensors take ~20 GB
    train: bool = True          # time the training forward + backward, under each estimator
    estimator_samples: int = 2  # the elbo training row's K
    grad_ckpt: bool = False     # activation checkpointing in the training row (B.9's run uses it)
    compile: bool = False       # also time the exact sampler on torch.compile(model)
    iters: int = 1              # timed runs per row, after a warm-up run
    device: str = ""            # "" = cuda if available, else cpu
    seed: int = 0


PRESETS = {
    # tiny: 2 tokens a step, as B.9
    "tiny": dict(model="tiny", prompt_len=32, gen_len=64, block_len=16, steps=32, iters=3),
    "llada-8b": dict(model="llada-8b", prompt_len=200, gen_len=256, block_len=32, steps=128,
                     mask_id=126336, pad_id=126081),  # LLaDA's <|mdm_mask|> and <|endoftext|> (IGPO.md B.1)
}
RULES = dict(model=C.one_of(*M.PRESETS), batch=C.at_least(1), prompt_len=C.at_least(1),
             temperature=C.at_least(0), threshold=C.between(0, 1), iters=C.at_least(1), device=C.DEVICE,
             estimator_samples=C.at_least(1))
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16, NVIDIA's data sheets (SXM)


@torch.no_grad()
def reference_generate(model, prompt, gen_len, block_len, steps, mask_id, temperature, generator, ctx):
    """LLaDA's generate.py (B.2.1) as written: full-canvas logits in the model's dtype, float64 Gumbel noise
    over (B, T, V), the confidence softmax in the logits' dtype, per-row top-k."""
    B, P = prompt.shape
    x = torch.cat([prompt, torch.full((B, gen_len), mask_id, device=prompt.device)], 1)
    n_blocks = gen_len // block_len
    for b in range(n_blocks):
        lo, hi = P + b * block_len, P + (b + 1) * block_len
        counts = num_transfer_tokens((x[:, lo:hi] == mask_id).sum(1), steps // n_blocks)
        for i in range(steps // n_blocks):
            mask_index = x == mask_id
            with ctx:
                logits = model(x)  # (B, T, V)
            if temperature > 0:  # add_gumbel_noise: float64 noise, then argmax
                u = torch.rand(logits.shape, dtype=torch.float64, device=x.device, generator=generator)
                x0 = (logits.double().exp() / (-torch.log(u)) ** temperature).argmax(-1)
            else:
                x0 = logits.argmax(-1)
            p = F.softmax(logits, dim=-1).gather(-1, x0[..., None]).squeeze(-1)  # the logits' dtype
            p[:, hi:] = -torch.inf
            x0 = torch.where(mask_index, x0, x)
            conf = torch.where(mask_index, p, -torch.inf)
            take = torch.zeros_like(x, dtype=torch.bool)
            for j in range(B):  # a host sync per row per step, as written
                take[j, torch.topk(conf[j], k=int(counts[j, i])).indices] = True
            x[take] = x0[take]
    return x[:, P:]


def flops_counter(model):
    """-> flops(rows, keys, out_rows): model FLOPs of one sequence's forward (PaLM): 2 per weight per row
    through the blocks, 2 per head weight per projected row, attention's QK^T and AV: 4 * n_layer * n_embd *
    rows * keys."""
    mc, n = model.config, lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    blocks, head = n(model.blocks), n(model.model.transformer.ff_out)

    def flops(rows, keys, out_rows):
        weights = 2 * (blocks * rows + head * out_rows)
        attention = 4 * mc.n_layer * mc.n_embd * rows * keys
        return weights + attention
    return flops


def main(argv=None):
    cfg = parse_args(Config(), argv, PRESETS, RULES)
    check_settings(0, cfg.gen_len, cfg.block_len, cfg.steps, cfg.gen_len)
    rt = setup(cfg.device, cfg.seed)
    cuda = rt.device.type == "cuda"  # the timing and memory hooks below; nanochat binds them to no-ops on CPU
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    reset_peak = torch.cuda.reset_peak_memory_stats if cuda else (lambda: None)
    peak = (lambda: f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB") if cuda else (lambda: "n/a")
    dtype = torch.bfloat16 if cuda else torch.float32  # LLaDA ships bf16 weights (B.1.4)
    if cfg.ckpt:
        model = M.load(cfg.ckpt, rt.device, dtype).eval()
    else:  # random weights, drawn on the device (seconds for the 8B on a GPU)
        model = M.build(M.PRESETS[cfg.model], rt.device, seed=cfg.seed, dtype=dtype).eval()
    mc = model.config
    if cfg.mask_id < 0 or cfg.pad_id < 0:
        from data.tokenizer import EOS, MASK, get_tokenizer, special_id
        enc = get_tokenizer(mc.tokenizer)
        cfg.mask_id, cfg.pad_id = special_id(enc, MASK), special_id(enc, EOS)
    g = torch.Generator().manual_seed(cfg.seed)
    prompt = torch.randint(0, min(cfg.mask_id, cfg.pad_id), (cfg.prompt_len,), generator=g).tolist()
    prompts, L, n_blocks = [prompt] * cfg.batch, cfg.gen_len, cfg.gen_len // cfg.block_len
    # counts: forwards and model FLOPs since the last reset, from the shapes
    flops, counts = flops_counter(model), [0, 0]

    def count(m, args, kw):  # keys: the whole canvas for a KV-cached slice (sample.KVCache), else the rows
        (B, rows), kv, out = args[0].shape, kw.get("kv"), kw.get("out")
        keys = rows if kv is None or kv.kv[0] is None else kv.kv[0][0].shape[2]
        counts[0] += 1
        counts[1] += B * flops(rows, keys, rows if out is None else out[1] - out[0])
    model.register_forward_pre_hook(count, with_kwargs=True)
    peak_flops = next((v for k, v in PEAK_FLOPS.items() if cuda and k in torch.cuda.get_device_name()), None)
    mfu = lambda flops, sec: f"{100 * flops / sec / peak_flops:.1f}%" if peak_flops else "n/a"  # noqa: E731
    print0(f"bench {cfg.preset} | {cfg.ckpt or cfg.model} {dtype} on {rt.device} | batch {cfg.batch} prompt "
           f"{cfg.prompt_len} gen_len {L} block {cfg.block_len} steps {cfg.steps} "
           f"temperature {cfg.temperature}")

    def run(fn, warmup_full=False):
        """fn(gen_len, steps) after a warm-up call (one block, or the whole run for torch.compile):
        (seconds per run, forwards per run, model FLOPs per run, peak memory)."""
        fn(L if warmup_full else cfg.block_len, cfg.steps if warmup_full else cfg.steps // n_blocks)
        sync()
        reset_peak()
        counts[:], t0 = [0, 0], time.perf_counter()
        for _ in range(cfg.iters):
            fn(L, cfg.steps)
        sync()
        return (time.perf_counter() - t0) / cfg.iters, counts[0] / cfg.iters, counts[1] / cfg.iters, peak()

    def sampler(m=model, **kw):  # -> fn(gen_len, steps) for run(), with a generator of its own
        gen = torch.Generator(rt.device).manual_seed(cfg.seed)

        def fn(gen_len, steps):
            return sample(m, prompts, gen_len, cfg.block_len, steps, cfg.mask_id, cfg.pad_id, cfg.temperature,
                          generator=gen, ctx=rt.ctx, **kw)
        return fn

    rows = []
    if cfg.reference:
        gen, x = torch.Generator(rt.device).manual_seed(cfg.seed), torch.tensor(prompts, device=rt.device)
        rows.append(("(a) LLaDA reference", run(lambda gl, st: reference_generate(
            model, x, gl, cfg.block_len, st, cfg.mask_id, cfg.temperature, gen, rt.ctx))))
    rows.append(("(b) exact", run(sampler())))
    if cfg.compile:
        try:
            rows.append(("(b) exact, compiled", run(sampler(torch.compile(model)), warmup_full=True)))
        except Exception as e:  # e.g. no C++ compiler for inductor on this CPU
            print0(f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    rows.append(("(c) prefix cache", run(sampler(cache="prefix"))))
    rows.append(("(c) dual cache", run(sampler(cache="dual"))))
    rows.append((f"(c) threshold {cfg.threshold}", run(sampler(threshold=cfg.threshold))))
    dual_threshold = sampler(cache="dual", threshold=cfg.threshold)
    rows.append((f"(c) dual + threshold {cfg.threshold}", run(dual_threshold)))

    base = rows[0][1][0]
    print0(f"\n{'sampler':<26} {'tokens/s':>10} {'ms/step':>9} {'forwards':>9} {'TFLOP/s':>8} {'MFU':>6} "
           f"{'peak mem':>10} {'x ref':>7}")
    for name, (sec, fw, fl, mem) in rows:  # ms/step: per forward
        print0(f"{name:<26} {cfg.batch * L / sec:>10.1f} {1e3*sec/fw:>9.2f} {fw:>9.0f} "
               f"{fl / sec / 1e12:>8.3f} {mfu(fl, sec):>6} {mem:>10} {base / sec:>7.2f}")

    if cfg.train:
        from train_igpo import token_logprobs
        model.requires_grad_(True)
        model.grad_ckpt = cfg.grad_ckpt
        comps = torch.randint(0, min(cfg.mask_id, cfg.pad_id), (cfg.batch, L), generator=g).to(rt.device)

        def train_step(estimator, samples):  # -> fn(gen_len, steps) for run()
            def fn(gen_len, steps):
                group = comps[:, :gen_len]  # (batch, gen_len): one group of completions of the prompt
                with rt.ctx:
                    logp = token_logprobs(model, [prompt], cfg.pad_id, cfg.mask_id, gen_len, group, cfg.batch,
                                          estimator=estimator, samples=samples)
                logp.mean().backward()
                model.zero_grad(set_to_none=True)
            return fn
        T, K = cfg.prompt_len + L, cfg.estimator_samples
        n_params = sum(p.numel() for p in model.parameters())
        print0(f"\ntrain: token_logprobs forward + backward, 1 prompt x {cfg.batch} completions, rows of {T} "
               f"positions, N = {n_params / 1e6:.1f}M")
        print0(f"{'estimator':<14} {'rows':>5} {'ms':>9} {'tokens/s':>10} {'TFLOP/s':>8} {'MFU':>6} "
               f"{'peak mem':>10} {'x mean_field':>13}")
        base = None
        for name, estimator, samples in (("mean_field", "mean_field", 1), ("coupled", "coupled", 1),
                                         (f"elbo K={K}", "elbo", K)):
            try:
                sec, fw, fl, mem = run(train_step(estimator, samples), warmup_full=True)
            except torch.OutOfMemoryError:  # CUDA: coupled and elbo forward 2 or K rows per completion
                model.zero_grad(set_to_none=True)
                print0(f"{name:<14} out of memory")
                continue
            base = base or sec
            n_rows = fl / fw / flops(T, T, L)  # the forward's batch; backward = 2 forwards
            print0(f"{name:<14} {n_rows:>5.0f} {1e3 * sec:>9.1f} {n_rows * T / sec:>10.0f} "
                   f"{3 * fl / sec / 1e12:>8.3f} {mfu(3 * fl, sec):>6} {mem:>10} {sec / base:>13.2f}")


if __name__ == "__main__":
    run_main(main)
