"""
A LLaDA-compatible masked-diffusion transformer, its weights I/O, and the runtime helpers every
script shares.

    (a) model:    ModelConfig + PRESETS, the LLaDA block (pre-norm RMSNorm, fp32 RoPE, SwiGLU,
                  bidirectional attention through SDPA, no biases, untied head). Module names mirror
                  the Hugging Face checkpoint (model.transformer.blocks.{i}.q_proj, ...), so a LLaDA
                  state dict maps onto it by name (IGPO.md B.1.3).
    (b) weights:  save()/load() of our own checkpoints: a folder with model.safetensors + config.json.
    (c) runtime:  setup() (process group, device, autocast, seed), shard() (FSDP2), gathered(),
                  print0(), and the --key=value override helper.
"""
import contextlib
import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelConfig:
    vocab_size: int = 264        # embedding rows (>= tokenizer size; LLaDA pads to 126464)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    mlp_hidden: int = 384        # SwiGLU hidden width (ff_proj/up_proj out features)
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    max_seq_len: int = 256
    tokenizer: str = "byte"      # "byte" or a folder holding tokenizer.json (data/tokenizer.py)


PRESETS = {
    # CPU teaching model, ~0.9M parameters: the whole pipeline runs on a laptop in minutes
    "tiny": ModelConfig(),
    # a small GPU model (~85M) for quick experiments with the byte tokenizer
    "small": ModelConfig(n_layer=12, n_head=12, n_embd=768, mlp_hidden=2048, max_seq_len=1024),
    # exactly LLaDA-8B's shape (IGPO.md B.1.1); the tokenizer comes from the checkpoint folder
    "llada-8b": ModelConfig(vocab_size=126464, n_layer=32, n_head=32, n_embd=4096, mlp_hidden=12288,
                            rope_theta=500000.0, norm_eps=1e-5, max_seq_len=4096, tokenizer=""),
}


class RMSNorm(nn.Module):
    """LLaDA's RMSNorm: statistics in fp32, cast back to the input dtype, then scale (no bias)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def rope(x, cos, sin):
    """NeoX-style rotary embedding in fp32 (rope_full_precision): x (B, H, T, D), cos/sin (B, 1, T, D)."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)  # rotate_half
    return (xf * cos + rotated * sin).to(x.dtype)


class Block(nn.Module):
    """LLaDALlamaBlock: h = x + attn_out(SDPA(q, k, v)); y = h + ff_out(silu(ff_proj(n)) * up_proj(n))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, h = cfg.n_embd, cfg.mlp_hidden
        self.n_head = cfg.n_head
        self.attn_norm = RMSNorm(d, cfg.norm_eps)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = RMSNorm(d, cfg.norm_eps)
        self.ff_proj = nn.Linear(d, h, bias=False)  # the gate: SiLU is applied to this one
        self.up_proj = nn.Linear(d, h, bias=False)
        self.ff_out = nn.Linear(h, d, bias=False)

    def forward(self, x, cos, sin, attn_mask):
        B, T, C = x.shape
        n = self.attn_norm(x)
        q, k, v = (p(n).view(B, T, self.n_head, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        # no causal mask: every position sees every (non-pad) position, prompt and canvas alike
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=False)  # (B, H, T, D)
        x = x + self.attn_out(y.transpose(1, 2).reshape(B, T, C))
        n = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(n)) * self.up_proj(n))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.grad_ckpt = False  # activation checkpointing per block (set by the training scripts)
        # model.transformer.* mirrors the HF checkpoint's key names (IGPO.md B.1.3)
        self.model = nn.Module()
        self.model.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            blocks=nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer)),
            ln_f=RMSNorm(cfg.n_embd, cfg.norm_eps),
            ff_out=nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False),  # untied output head
        ))

    @property
    def blocks(self):
        return self.model.transformer.blocks

    @torch.no_grad()
    def init_weights(self, seed: int = 0):
        """Random init (after to_empty on a meta-built model). Same seed -> same weights anywhere."""
        g = torch.Generator().manual_seed(seed)
        std = 0.02
        for name, p in self.named_parameters():  # fixed order, drawn on CPU, so results are device-independent
            if name.endswith("norm.weight") or name.endswith("ln_f.weight"):
                w = torch.ones(p.shape)
            else:  # residual outputs scaled down with depth (GPT-2 / nanoGPT)
                residual = ".blocks." in name and name.endswith(("attn_out.weight", "ff_out.weight"))
                w = torch.randn(p.shape, generator=g) * (std / math.sqrt(2 * self.config.n_layer) if residual else std)
            p.copy_(w.to(p.dtype))

    def forward(self, idx, pad_mask=None, out: tuple | None = None):
        """idx (B, T) token ids -> logits (B, T, V), or (B, end-start, V) for out=(start, end).
        pad_mask (B, T) bool, True at real tokens: pads (left padding) are hidden from attention and
        positions count real tokens only, so a padded row computes exactly what the unpadded row does."""
        t = self.model.transformer
        B, T = idx.shape
        x = t.wte(idx)  # (B, T, C)
        if pad_mask is None:
            pos = torch.arange(T, device=idx.device).expand(B, T)
            attn_mask = None
        else:
            pos = (pad_mask.long().cumsum(-1) - 1).clamp(min=0)
            attn_mask = pad_mask[:, None, None, :]  # (B, 1, 1, T): keys visible to every query
        hd = self.config.n_embd // self.config.n_head
        inv_freq = self.config.rope_theta ** (-torch.arange(0, hd, 2, device=idx.device, dtype=torch.float32) / hd)
        freqs = pos.float()[..., None] * inv_freq  # (B, T, hd/2), fp32
        freqs = torch.cat((freqs, freqs), dim=-1)[:, None]  # (B, 1, T, hd)
        cos, sin = freqs.cos(), freqs.sin()
        for block in t.blocks:
            if self.grad_ckpt and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, cos, sin, attn_mask, use_reentrant=False)
            else:
                x = block(x, cos, sin, attn_mask)
        if out is not None:  # the vocabulary projection only where the caller needs logits
            x = x[:, out[0]:out[1]]
        return t.ff_out(t.ln_f(x))


def build(cfg: ModelConfig, device, seed: int | None = 0) -> Transformer:
    """Build on the meta device (no memory), materialise on `device`, random-init unless seed is None."""
    with torch.device("meta"):
        model = Transformer(cfg)
    model.to_empty(device=device)
    if seed is not None:
        model.init_weights(seed)
    return model


# ----------------------------------------------------------------------------------------------------
# (b) weights I/O: our checkpoints are a folder with model.safetensors + config.json (+ meta.json)

def _atomic_write(path: str, write):
    """write(tmp_path), then rename: a crash mid-save never corrupts the previous file."""
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def write_json(path: str, obj):
    def w(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
    _atomic_write(path, w)


def full_state_dict(model) -> dict:
    """Plain CPU tensors of the whole model, sharded (FSDP2) or not (STYLE.md 3.5). Collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save(model, out_dir: str, meta: dict | None = None, rank: int = 0):
    """Every rank calls this (gathering a sharded model is collective); rank 0 writes."""
    from safetensors.torch import save_file
    sd = full_state_dict(model)
    if rank != 0:
        return
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.contiguous() for k, v in sd.items()}
    _atomic_write(os.path.join(out_dir, "model.safetensors"), lambda tmp: save_file(sd, tmp))
    write_json(os.path.join(out_dir, "config.json"), dataclasses.asdict(model.config))
    if meta is not None:
        write_json(os.path.join(out_dir, "meta.json"), meta)


def load_config(ckpt_dir: str) -> ModelConfig:
    path = os.path.join(ckpt_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {ckpt_dir!r}: no config.json (expected model.safetensors + config.json)")
    with open(path) as f:
        d = json.load(f)
    unknown = set(d) - {f.name for f in dataclasses.fields(ModelConfig)}
    if unknown:
        raise ValueError(f"{path}: unknown fields {sorted(unknown)}")
    return ModelConfig(**d)


def load_state(model, sd: dict, source: str):
    """Load a full state dict into a (possibly sharded) model, failing loudly on missing, unexpected
    or mis-shaped keys, each named."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}  # global shapes, also for DTensors
    missing = sorted(set(want) - set(sd))
    unexpected = sorted(set(sd) - set(want))
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {want[k]}" for k in sorted(set(want) & set(sd))
              if tuple(sd[k].shape) != want[k]]
    if missing or unexpected or shapes:
        raise ValueError(f"{source}: state dict does not match the model:"
                         + (f"\n  missing keys: {missing}" if missing else "")
                         + (f"\n  unexpected keys: {unexpected}" if unexpected else "")
                         + (f"\n  mis-shaped keys: {shapes}" if shapes else ""))
    set_model_state_dict(model, sd, options=StateDictOptions(full_state_dict=True, strict=True))


def load(ckpt_dir: str, device="cpu") -> Transformer:
    """Build from config.json on meta, materialise on `device`, load model.safetensors."""
    from safetensors.torch import load_file
    cfg = load_config(ckpt_dir)
    path = os.path.join(ckpt_dir, "model.safetensors")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {ckpt_dir!r}: no model.safetensors")
    model = build(cfg, device, seed=None)
    load_state(model, load_file(path), path)
    return model


# ----------------------------------------------------------------------------------------------------
# (c) runtime: the only place that looks at the device type or the world size

@dataclass
class Runtime:
    rank: int
    world_size: int
    device: torch.device
    ctx: object  # autocast context: bf16 on CUDA, a no-op on CPU


def setup(device: str = "", seed: int = 0) -> Runtime:
    """Process group (always, so collectives need no `if`), device, autocast, seed. Works with or
    without torchrun: without it, rank 0 of 1 over an in-memory store."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() and device != "cpu"
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        if "RANK" in os.environ:
            dist.init_process_group(backend, device_id=dev if use_cuda else None)
        else:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    torch.manual_seed(seed)  # one shared seed for init; samplers add the rank themselves
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_cuda else contextlib.nullcontext()
    if use_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    return Runtime(rank, world, dev, ctx)


def shard(model: Transformer, rt: Runtime) -> Transformer:
    """FSDP2: fully_shard each block, then the root. The only world-size branch of the codebase:
    at world size 1 sharding only costs time (STYLE.md 3.3)."""
    if rt.world_size == 1:
        return model
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if rt.device.type == "cuda" else None
    kw = dict(mp_policy=mp) if mp else {}
    for block in model.blocks:
        fully_shard(block, **kw)
    fully_shard(model, **kw)
    return model


@contextlib.contextmanager
def gathered(model):
    """Keep FSDP2 parameters unsharded for a rollout phase. Inside, ranks may run different numbers of
    forwards (IGPO re-rolls only all-wrong groups, a per-rank count) without deadlocking (STYLE.md 3.4),
    and the all-gathers happen once per phase instead of once per block per denoising step.
    A no-op for an unsharded model."""
    from torch.distributed.fsdp import FSDPModule
    fsdp = [m for m in model.modules() if isinstance(m, FSDPModule)]
    if not fsdp:
        yield model
        return
    model.set_reshard_after_forward(False)  # recurses into the blocks
    for m in fsdp:
        m.unshard()
    try:
        yield model
    finally:
        for m in fsdp:
            m.reshard()
        model.set_reshard_after_forward(True)


def print0(*args, **kwargs):
    if int(os.environ.get("RANK", 0)) == 0:
        print(*args, **kwargs, flush=True)


def parse_args(cfg, argv=None, presets: dict | None = None):
    """--key=value overrides of a config dataclass (flag names = field names). --preset=NAME applies a
    named dict from the script's PRESETS first. Unknown keys are an error listing the valid ones."""
    argv = sys.argv[1:] if argv is None else argv
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    pairs = []
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            raise SystemExit(f"bad argument {arg!r}: expected --key=value")
        pairs.append(arg[2:].split("=", 1))
    for key, val in sorted(pairs, key=lambda kv: kv[0] != "preset"):  # the preset first, then overrides
        if key not in fields:
            raise SystemExit(f"unknown flag --{key}; valid flags: {', '.join('--' + k for k in fields)}")
        if key == "preset" and presets is not None:
            if val not in presets:
                raise SystemExit(f"unknown preset {val!r}; known presets: {', '.join(presets)}")
            cfg = dataclasses.replace(cfg, **presets[val])
        typ = type(getattr(cfg, key))
        try:
            if typ is bool:
                if val.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(val)
                val = val.lower() in ("true", "1")
            else:
                val = typ(val)
        except ValueError:
            raise SystemExit(f"--{key}={val}: expected a {typ.__name__}")
        cfg = dataclasses.replace(cfg, **{key: val})
    return cfg
