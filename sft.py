"""
Masked-diffusion SFT (LLaDA's recipe, IGPO.md B.6.2): the first stage of the pipeline.

    python sft.py --preset=tiny                                   # toy task, CPU, a few minutes
    torchrun --standalone --nproc_per_node=8 sft.py --preset=...  # same code, sharded with FSDP2

Each step: t ~ U(0,1) per sequence, every response token (EOS padding included: the model must
learn where to stop) is masked with probability p = (1-eps) t + eps, the prompt never is; the loss
is the cross-entropy on masked positions weighted by 1/p, divided by the response length.
Data order and noise depend only on (seed, step), so --resume continues exactly.
"""
import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

import common as C
import model as M
from common import (Runtime, gathered, kept_log, load_optimizer, locked, parse_args, print0, resume_point,
                    run_main, save_checkpoint, setup, shard, stream_seed, wandb_logger)
from data import TASKS, get_task
from data.rewrite import load_rewritten
from data.tokenizer import EOS, MASK, chat, get_tokenizer, special_id
from sample import check_settings, left_pad


@dataclass
class Config:
    preset: str = "tiny"        # model preset (model.PRESETS) and SFT settings (PRESETS below)
    task: str = "toy"           # what to train on (its train split) and evaluate on (its test split)
    data: str = ""              # train on this data/rewrite.py output instead (length-aligned SFT, B.6.1)
    init_from: str = ""         # start from a checkpoint folder instead of random weights
    out_dir: str = "out/sft"
    max_steps: int = 2500
    batch_size: int = 64        # sequences per step, over all ranks
    lr: float = 3e-3
    min_lr_frac: float = 0.1    # cosine decay to lr * min_lr_frac
    warmup: int = 50
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    eps: float = 1e-3           # p = (1 - eps) t + eps, so no sequence is left unmasked
    gen_len: int = 16           # response length: target + EOS padding
    block_len: int = 8          # sampling settings of the final evaluation
    steps: int = 16
    max_minutes: float = 0.0    # > 0: also stop after this wall time (a run is max_steps steps, not a time)
    n_eval: int = 2000          # held-out problems sampled at the end (the toy: 1000 easy, 1000 hard)
    log_interval: int = 25
    ckpt_interval: int = 500
    resume: bool = False
    overwrite: bool = False     # out_dir holds a run: move it to OUT_DIR.old1 (.old2, ...) and start anew
    seed: int = 1337
    device: str = ""            # "" = cuda if available, else cpu
    grad_ckpt: bool = False     # activation checkpointing per block
    dtype: str = "float32"      # parameters: float32, or bfloat16 (the 8B)
    lora_r: int = 0             # LoRA rank (0 = full fine-tuning); d1's SFT: r 128, alpha 256, on q, k, v
    lora_alpha: float = 256.0
    lora_targets: str = "q_proj,k_proj,v_proj"  # or "all"
    wandb: bool = False         # also log to Weights & Biases (imported only then; not in requirements.txt)
    wandb_project: str = "nano-igpo"


PRESETS = {
    "tiny": dict(),
    "small": dict(max_steps=20000, batch_size=256, lr=1e-3, gen_len=64, block_len=16, steps=64),
    "llada-8b": dict(task="gsm8k", max_steps=2000, batch_size=64, lr=1e-5, weight_decay=0.1, gen_len=256,
                     block_len=32, steps=128, warmup=50, grad_ckpt=True, dtype="bfloat16", lora_r=128),
}
RULES = dict(  # checked right after parsing, before any work or writing (common.parse_args)
    task=C.one_of(*TASKS), out_dir=C.FOLDER, max_steps=C.at_least(1), batch_size=C.at_least(1),
    lr=C.at_least(0), min_lr_frac=C.between(0, 1), warmup=C.at_least(0), weight_decay=C.at_least(0),
    grad_clip=C.at_least(0), eps=C.between(0, 1), max_minutes=C.at_least(0), n_eval=C.at_least(0),
    log_interval=C.at_least(1), ckpt_interval=C.at_least(1), device=C.DEVICE,
    dtype=C.one_of("float32", "bfloat16"), lora_r=C.at_least(0), lora_alpha=C.at_least(0),
    lora_targets=C.LORA_TARGETS, wandb=C.WANDB, overwrite=C.OVERWRITE)


def encode_examples(task, examples, enc, gen_len: int):
    """-> [(prompt ids, response ids padded with EOS to gen_len)]; responses that do not fit are dropped."""
    eos = special_id(enc, EOS)
    out = []
    for ex in examples:
        resp = enc.encode_ordinary(task.target(ex)) + [eos]  # at least one EOS: the model must learn to stop
        if len(resp) <= gen_len:
            out.append((chat(enc, task.prompt(ex, "train")), resp + [eos] * (gen_len - len(resp))))
    return out


def corrupt(response, t, u, eps: float, mask_id: int):
    """Forward process: mask each response token with probability p = (1-eps) t + eps.
    response (B, L), t (B,), u (B, L) uniforms -> noisy (B, L), masked (B, L) bool, p (B,)."""
    p = (1 - eps) * t + eps
    masked = u < p[:, None]
    return torch.where(masked, mask_id, response), masked, p


def sft_loss(logits, response, masked, p):
    """LLaDA's loss: sum over masked positions of CE / p, divided by the response length, batch mean.
    logits (B, L, V), response (B, L), masked (B, L), p (B,)."""
    ce = F.cross_entropy(logits.float().flatten(0, 1), response.flatten(), reduction="none")  # (B*L,)
    ce = ce.view(response.shape)  # (B, L)
    return ((ce * masked) / p[:, None]).sum(1).div(response.shape[1]).mean()


def lr_at(step: int, cfg: Config) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.max_steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def get_batch(data, step: int, cfg: Config, rt: Runtime, pad_id: int):
    """This rank's slice of the global batch of `step`: a function of (seed, step) only."""
    rng = random.Random(stream_seed(cfg.seed, step, -1, "sft_rows"))  # the global batch: alike on every rank
    rows = [data[rng.randrange(len(data))] for _ in range(cfg.batch_size)]
    g = torch.Generator().manual_seed(stream_seed(cfg.seed, step, -1, "sft_noise"))
    # t stratified over the global batch (MDLM's low-discrepancy sampler): one uniform offset, the B draws
    # spread evenly over [0, 1), shuffled. The same loss in expectation, far less variance from batch to
    # batch (the 1/p weights make a batch of small t noisy); the tiny model's SFT then converges on every
    # seed instead of on some
    t = (torch.rand(1, generator=g) + torch.arange(cfg.batch_size) / cfg.batch_size) % 1
    t = t[torch.randperm(cfg.batch_size, generator=g)]
    u = torch.rand(cfg.batch_size, cfg.gen_len, generator=g)
    per = cfg.batch_size // rt.world_size
    sl = slice(rt.rank * per, (rt.rank + 1) * per)
    prompt, pad_mask = left_pad([r[0] for r in rows[sl]], pad_id, rt.device)
    response = torch.tensor([r[1] for r in rows[sl]], device=rt.device)
    return prompt, pad_mask, response, t[sl].to(rt.device), u[sl].to(rt.device)


def main(argv=None):
    cfg = parse_args(Config(), argv, PRESETS, RULES)
    check_settings(0, cfg.gen_len, cfg.block_len, cfg.steps, cfg.gen_len)  # the final evaluation's sampler
    rt = setup(cfg.device, cfg.seed)
    if cfg.batch_size % rt.world_size:
        raise ValueError(f"--batch_size={cfg.batch_size} must divide by the world size ({rt.world_size})")
    with locked(cfg.out_dir, rt):  # one run per folder
        return train_loop(cfg, rt)


def train_loop(cfg: Config, rt: Runtime) -> dict:
    """The run, inside its folder's lock: resume point, model, data, steps, summary."""
    ckpt_dir = cfg.out_dir  # the run folder is the checkpoint: model.safetensors, config.json, meta.json
    init_state = C.finish_checkpoint(cfg.init_from, rt) if cfg.init_from else None
    step = resume_point(cfg, rt, init_state) if cfg.resume else C.new_run(cfg, rt)
    resume = step > 0
    dtype = getattr(torch, cfg.dtype)
    if resume and not cfg.lora_r:
        model = M.load(ckpt_dir, rt.device, dtype)
    elif cfg.init_from:  # our checkpoint or a Hugging Face LLaDA folder
        model = M.load(cfg.init_from, rt.device, dtype)
    else:
        model = M.build(M.PRESETS[cfg.preset], rt.device, cfg.seed, dtype)
    if cfg.lora_r:  # frozen base + adapters; resuming reloads the adapters
        targets = "all" if cfg.lora_targets == "all" else cfg.lora_targets.split(",")
        M.apply_lora(model, cfg.lora_r, cfg.lora_alpha, 0.0, targets, seed=cfg.seed)
        if resume:
            M.load_lora(model, ckpt_dir)
    model.grad_ckpt = cfg.grad_ckpt
    model = shard(model, rt)
    enc = get_tokenizer(model.config.tokenizer)
    mask_id, eos_id = special_id(enc, MASK), special_id(enc, EOS)
    task = get_task(cfg.task)
    rows = load_rewritten(cfg.data) if cfg.data else task.load("train")
    data = encode_examples(task, rows, enc, cfg.gen_len)
    if not data:
        source = cfg.data or f"task {cfg.task}"
        raise ValueError(f"no training example of {source} fits gen_len={cfg.gen_len} (of {len(rows)})")
    test = task.load("test")[: cfg.n_eval] if cfg.n_eval > 0 else []
    # every prompt, trained on or evaluated, fits the model with its gen_len tokens: checked before any step
    longest = max(len(p) for p in [r[0] for r in data] + [chat(enc, task.prompt(ex, "eval")) for ex in test])
    check_settings(longest, cfg.gen_len, cfg.block_len, cfg.steps, model.config.max_seq_len)
    print0(f"config: {json.dumps(dataclasses.asdict(cfg))}")
    n_params = sum(p.numel() for p in model.parameters())
    print0(f"world {rt.world_size} | device {rt.device} | params {n_params:,} | "
           f"{len(data)} training examples | torch {torch.__version__}")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, betas=(0.9, 0.95),
                            weight_decay=cfg.weight_decay, fused=rt.device.type == "cuda")
    if resume:  # optimizer state is per rank: resuming needs the same world size
        load_optimizer(opt, ckpt_dir, rt.rank)
    history = kept_log(cfg.out_dir, step, rt)  # the log rows up to the checkpoint's step, when resuming
    if rt.rank == 0:
        M.write_json(os.path.join(cfg.out_dir, "run_config.json"), dataclasses.asdict(cfg))
    to_wandb = wandb_logger(cfg, rt)

    t0, losses = time.time(), []
    model.train()
    while step < cfg.max_steps:
        prompt, pad_mask, response, t, u = get_batch(data, step, cfg, rt, eos_id)
        noisy, masked, p = corrupt(response, t, u, cfg.eps, mask_id)
        P = prompt.shape[1]
        full_mask = None if pad_mask is None else torch.cat([pad_mask, pad_mask.new_ones(response.shape)], 1)
        with rt.ctx:
            logits = model(torch.cat([prompt, noisy], 1), full_mask, out=(P, P + cfg.gen_len))  # (B, L, V)
        loss = sft_loss(logits, response, masked, p)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip).item()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        losses.append(loss.detach())
        out_of_time = torch.tensor(float(0 < cfg.max_minutes < (time.time() - t0) / 60), device=rt.device)
        finite = torch.isfinite(loss.detach()) & math.isfinite(gnorm)  # the loss is this rank's own
        stop = torch.stack([out_of_time, (~finite).float()])
        dist.all_reduce(stop, op=dist.ReduceOp.MAX)  # every rank stops at the same step (FSDP needs it)
        out_of_time, nonfinite = stop.tolist()
        if nonfinite:  # before this step is logged or saved (common.diverged)
            raise C.diverged(step, cfg.out_dir, loss=loss.item(), grad_norm=gnorm)
        save = step % cfg.ckpt_interval == 0 or step == cfg.max_steps or out_of_time
        # a checkpoint step is logged too: a resumed run then averages the same steps into each row
        if step % cfg.log_interval == 0 or save:
            avg = torch.stack(losses).mean()
            dist.all_reduce(avg, op=dist.ReduceOp.AVG)
            rec = {"step": step, "loss": round(avg.item(), 4), "lr": lr_at(step - 1, cfg),
                   "grad_norm": round(gnorm, 3), "seconds": round(time.time() - t0, 1)}
            losses = []
            history.append(rec)
            print0(" | ".join(f"{k} {v}" for k, v in rec.items()))
            to_wandb(rec)
            if rt.rank == 0:
                with open(os.path.join(cfg.out_dir, "log.jsonl"), "a") as f:
                    f.write(json.dumps(rec) + "\n")
        if save:
            save_checkpoint(model, opt, ckpt_dir, step, cfg, rt.rank, init_state)
        if out_of_time:
            break

    final_loss = history[-1]["loss"] if history else None  # of the whole run, when resumed too
    summary = {"steps": step, "final_loss": final_loss, "train_seconds": round(time.time() - t0, 1)}
    if cfg.n_eval > 0:
        summary.update(final_eval(model, rt, task, test, enc, cfg))
    if rt.rank == 0:
        M.write_json(os.path.join(cfg.out_dir, "summary.json"), summary)
    return summary


def final_eval(model, rt, task, test, enc, cfg: Config) -> dict:
    """Held-out accuracy by difficulty, with the same sampler and reward as RL and eval.py."""
    from eval import evaluate, probe_accuracy
    model.eval()
    with gathered(model):  # ranks hold different numbers of test problems: uneven forwards
        res = evaluate(model, rt, task, test, enc, cfg.gen_len, cfg.block_len, cfg.steps)
        summary = {"accuracy": res["accuracy"], "accuracy_by_kind": res["by_kind"],
                   "accuracy_by_level": res["by_level"]}
        if hasattr(task, "probes"):  # tasks with checkable intermediate steps (toy)
            summary["step_accuracy"] = probe_accuracy(model, rt, task, test[:100], enc,
                                                      cfg.gen_len, cfg.block_len, cfg.steps)
    per_step = ""
    if "step_accuracy" in summary:
        per_step = f" | per-step (later steps masked) {summary['step_accuracy']:.3f}"
    kinds = f" | by kind {res['by_kind']}" if res["by_kind"] else ""
    print0(f"held-out accuracy {res['accuracy']:.3f}{kinds} | by level {res['by_level']}" + per_step)
    return summary


if __name__ == "__main__":
    run_main(main)
