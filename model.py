"""
A LLaDA-compatible masked-diffusion transformer and its weights I/O. The runtime every script shares and the
training checkpoints are common.py's (section c, d), which builds on this file.

    (a) model:    ModelConfig + PRESETS, the LLaDA block (pre-norm RMSNorm, fp32 RoPE, SwiGLU, bidirectional
                  SDPA, no biases, untied head), module names as in the HF checkpoint (IGPO.md B.1.3); LoRA.
    (b) weights:  save()/load() of our checkpoints and of HF LLaDA folders, export_hf(),
                  save_lora()/load_lora().
"""
import contextlib
import dataclasses
import json
import math
import os
import pathlib
from dataclasses import dataclass

import torch
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
    # exactly LLaDA-8B's shape (IGPO.md B.1.1); loaded folders bring their tokenizer, random weights use bytes
    "llada-8b": ModelConfig(vocab_size=126464, n_layer=32, n_head=32, n_embd=4096, mlp_hidden=12288,
                            rope_theta=500000.0, norm_eps=1e-5, max_seq_len=4096),
}


class RMSNorm(nn.Module):
    """LLaDA's RMSNorm: statistics in fp32, cast back to the input dtype, then scale (no bias)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))

    def forward(self, x):
        xf = x.float()
        return self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def rope(x, cos, sin):
    """NeoX-style rotary embedding in fp32 (rope_full_precision): x (B, H, T, D), cos/sin (B, 1, T, D)."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos + torch.cat((-x2, x1), dim=-1) * sin).to(x.dtype)  # rotate_half


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

    def forward(self, x, cos, sin, groups, kv=None):
        B, T, C = x.shape
        n = self.attn_norm(x)
        qkv = (self.q_proj, self.k_proj, self.v_proj)
        q, k, v = (p(n).view(B, T, self.n_head, -1).transpose(1, 2) for p in qkv)  # (B, H, T, D) each
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        # sample.py's KVCache: this slice's k, v -> the whole canvas's
        k, v = (k, v) if kv is None else kv(k, v)
        y = attention(q, k, v, groups, 0 if kv is None else kv.start)  # (B, H, T, D)
        x = x + self.attn_out(y.transpose(1, 2).reshape(B, T, C))
        n = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(n)) * self.up_proj(n))


def attention(q, k, v, groups, start: int = 0):
    """Bidirectional SDPA (no causal mask): q (B, H, Tq, D) holds canvas positions start.., k and v
    (B, H, Tk, D) the whole canvas. groups: None (no padding), or [(n_pad, rows)]: the rows with n_pad left
    pads attend over their keys n_pad.. only, as if unpadded. Masking the pads instead gives other sums (the
    kernel's blocks depend on the key count): ~1e-7 in fp32 logits on CPU, enough to flip a near tie between
    two tokens. The pads' own outputs stay 0 (nothing reads them)."""
    if groups is None:
        return F.scaled_dot_product_attention(q, k, v)
    y = torch.zeros_like(q)
    for n, rows in groups:
        a = max(0, n - start)  # the first query row that is not a pad
        y[rows, :, a:] = F.scaled_dot_product_attention(q[rows, :, a:], k[rows, :, n:], v[rows, :, n:])
    return y


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.grad_ckpt = False  # activation checkpointing per block (set by the training scripts)
        self._rope = None  # rope_table()'s (cos, sin), built on first use
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
        """Random init (after to_empty on a meta-built model). Same seed and device type -> same weights."""
        dev = next(self.parameters()).device  # drawn where they live: the 8B's 8e9 values in seconds on a GPU
        g, std, depth = torch.Generator(dev).manual_seed(seed), 0.02, math.sqrt(2 * self.config.n_layer)
        # a fixed order: every rank of a device type draws the same weights
        for name, p in self.named_parameters():
            if p.dim() == 1:  # RMSNorm gains (there are no biases)
                p.fill_(1.0)
            else:  # residual outputs scaled down with depth (GPT-2 / nanoGPT)
                residual = ".blocks." in name and name.endswith(("attn_out.weight", "ff_out.weight"))
                p.copy_(torch.randn(p.shape, generator=g, device=dev) * (std / depth if residual else std))

    def forward(self, idx, pad_mask=None, out: tuple | None = None, kv=None):
        """idx (B, T) token ids -> logits (B, T, V), or (B, end-start, V) for out=(start, end).
        pad_mask (B, T) bool, True at real tokens (left padding): each row attends over its real tokens only
        and positions count real tokens, so a padded row computes exactly (bit for bit, on CPU in fp32) what
        the row computes alone."""
        t = self.model.transformer
        B, T = idx.shape
        x = t.wte(idx)  # (B, T, C)
        # a KV-cached slice (sample.py): idx = canvas[:, s:s + T], pad_mask the canvas's
        s = 0 if kv is None else kv.start
        if pad_mask is None:
            pos = torch.arange(s, s + T, device=idx.device).expand(B, T)  # (B, T)
            groups = None
        else:  # a token's position = the real tokens before it; the pads before the first one sit at 0 too
            real_before = pad_mask.long().cumsum(-1) - 1  # (B, canvas)
            pos = real_before.clamp(min=0)[:, s:s + T]  # (B, T)
            n_pad = (~pad_mask).sum(1).tolist()  # one host sync per forward of a padded batch
            groups = [(n, torch.tensor([i for i, m in enumerate(n_pad) if m == n], device=idx.device))
                      for n in sorted(set(n_pad))]
        cos, sin = self.rope_table(idx.device)
        cos, sin = cos[pos][:, None], sin[pos][:, None]  # (B, 1, T, hd)
        for block in t.blocks:
            if self.grad_ckpt and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, cos, sin, groups, use_reentrant=False)
            else:
                x = block(x, cos, sin, groups, kv)
        x = x if out is None else x[:, out[0]:out[1]]  # the vocabulary projection only where needed
        return t.ff_out(t.ln_f(x))  # (B, T, V) or (B, end-start, V)

    def rope_table(self, device):
        """cos, sin (max_seq_len, hd) of every position, fp32, computed once per device as LLaDA's modelling
        code does (RotaryEmbedding): inv_freq = 1 / theta^(2j/hd), freqs = cat(angles, angles). A fixed table
        also keeps a position's values apart from the batch's shape."""
        if self._rope is None or self._rope[0].device != device:
            hd = self.config.n_embd // self.config.n_head
            even_dims = torch.arange(0, hd, 2, device=device, dtype=torch.float32)  # (hd/2,)
            # not theta ** (-even_dims / hd): that differs by an ulp in some frequencies (18 of 64 at hd 128)
            inv_freq = 1.0 / (self.config.rope_theta ** (even_dims / hd))
            positions = torch.arange(self.config.max_seq_len, device=device, dtype=torch.float32)
            angles = positions[:, None] * inv_freq  # (max_seq_len, hd/2)
            freqs = torch.cat((angles, angles), dim=-1)  # (max_seq_len, hd)
            self._rope = (freqs.cos(), freqs.sin())
        return self._rope


def build(cfg: ModelConfig, device, seed: int | None = 0, dtype=torch.float32) -> Transformer:
    """Build on meta, materialise on `device` in `dtype` (bf16: the 8B in 16 GB), random-init unless seed
    is None."""
    with torch.device("meta"):
        model = Transformer(cfg).to(dtype)  # free on meta: the parameters are born in `dtype`
    model.to_empty(device=device)
    if seed is not None:
        model.init_weights(seed)
    return model


# LoRA (Hu et al. 2021) as the official run has it through peft (IGPO.md B.9):
# y = W x + (alpha/r) B A drop(x), B = 0 at first. The base weight keeps its HF key (q_proj.weight, frozen);
# the adapters sit beside it (q_proj.lora_A/B).
# LORA_TARGETS: what the official target list hits in LLaDA (B.10.5)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "up_proj")
BLOCK_LINEARS = ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out")  # targets="all"


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float, g: torch.Generator):
        super().__init__()
        self.weight = base.weight.requires_grad_(False)  # adopted, not copied: (out, in)
        # fp32 on a bf16 base too (peft): lr 5e-7 survives
        kw = dict(device=self.weight.device, dtype=torch.float32)
        n_out, n_in = self.weight.shape
        # A ~ U(+-1/sqrt(in)) = peft's kaiming_uniform_(a=sqrt(5)), drawn on CPU so every rank agrees; B = 0
        self.lora_A = nn.Parameter(((torch.rand(r, n_in, generator=g) * 2 - 1) / math.sqrt(n_in)).to(**kw))
        self.lora_B = nn.Parameter(torch.zeros(n_out, r, **kw))
        self.scale, self.dropout, self.merged, self.enabled = alpha / r, nn.Dropout(dropout), False, True

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.merged or not self.enabled:
            return y
        A, B = self.lora_A, self.lora_B
        return y + (self.scale * F.linear(F.linear(self.dropout(x).to(A.dtype), A), B)).to(y.dtype)


def lora_modules(model) -> list:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def apply_lora(model, r: int, alpha: float, dropout: float, targets=LORA_TARGETS, seed: int = 0):
    """Freeze the model, wrap the `targets` linears of each block: after build/load (A drawn here), before
    shard()."""
    targets = BLOCK_LINEARS if targets == "all" else tuple(targets)
    applied, unknown = hasattr(model, "lora_config"), set(targets) - set(BLOCK_LINEARS)
    if applied or unknown or model.blocks[0].q_proj.weight.is_meta:
        raise ValueError(f"apply_lora: targets from {BLOCK_LINEARS}, once, on a materialised model; "
                         f"got {targets}")
    model.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    for block, name in ((b, n) for b in model.blocks for n in targets):
        setattr(block, name, LoRALinear(getattr(block, name), r, alpha, dropout, g))
    model.lora_config = dict(r=r, alpha=alpha, dropout=dropout, targets=list(targets))
    return model


@torch.no_grad()
def merge_lora(model, merged: bool = True):
    """W += scale B A in each adapted linear of an unsharded model; merged=False (unmerge_lora) takes it out
    again."""
    for m in (m for m in lora_modules(model) if m.merged != merged):
        delta = m.scale * m.lora_B.float() @ m.lora_A.float()  # (out, in)
        m.weight.copy_(m.weight.float() + (delta if merged else -delta))  # one rounding, even in bf16
        m.merged = merged


@contextlib.contextmanager
def lora_off(model):
    """The frozen base inside (the KL reference, no second weight copy). no_grad only: backward recomputes
    see LoRA."""
    mods = lora_modules(model)
    assert not any(m.merged for m in mods), \
        "lora_off on a merged model: merge_lora(model, merged=False) first"
    for m in mods:
        m.enabled = False
    try:
        yield model
    finally:
        for m in mods:
            m.enabled = True


# ----------------------------------------------------------------------------------------------------
# (b) weights I/O: our checkpoints are a folder with model.safetensors + config.json (+ meta.json)

def _atomic_write(path: str, write):
    """write(tmp_path), then rename: a crash mid-save never corrupts the previous file."""
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def write_json(path: str, obj):
    _atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(json.dumps(obj, indent=2)))


def read_json(path: str) -> dict:
    """A JSON object from a file; a ValueError names the file (and line) when it is not one."""
    try:
        obj = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object, got a {type(obj).__name__}")
    return obj


def full_state_dict(model) -> dict:
    """Plain CPU tensors of the whole model, sharded (FSDP2) or not (STYLE.md 3.5), LoRA merged in.
    Collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    for name, m in model.named_modules():
        if isinstance(m, LoRALinear) and sd:  # ranks > 0 get an empty dict
            A, B, w = sd.pop(f"{name}.lora_A"), sd.pop(f"{name}.lora_B"), sd[f"{name}.weight"]
            if not m.merged:  # W + scale B A in fp32, rounded once to W's dtype
                w = (w.float() + m.scale * B.float() @ A.float()).to(w.dtype)
            sd[f"{name}.weight"] = w
    return sd


def save(model, out_dir: str, rank: int = 0):
    """Every rank calls this (gathering a sharded model is collective); rank 0 writes."""
    from safetensors.torch import save_file
    sd = full_state_dict(model)
    if rank != 0:
        return
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.contiguous() for k, v in sd.items()}
    _atomic_write(os.path.join(out_dir, "model.safetensors"), lambda tmp: save_file(sd, tmp))
    write_json(os.path.join(out_dir, "config.json"), dataclasses.asdict(model.config))


def load_config(ckpt_dir: str) -> ModelConfig:
    path = os.path.join(ckpt_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {ckpt_dir!r}: no config.json "
                                "(expected model.safetensors + config.json)")
    d = read_json(path)
    if "d_model" in d:  # a Hugging Face LLaDA config.json; the tokenizer.json sits beside it
        cfg = dataclasses.replace(config_from_hf(d), tokenizer=os.path.abspath(ckpt_dir))
        return check_config(cfg, path, {ours: hf for hf, ours in HF_NAMES.items()})
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    if set(d) != names:  # a missing field would silently take the tiny preset's value
        wrong = dict(unknown=sorted(set(d) - names), missing=sorted(names - set(d)))
        raise ValueError(f"{path}: " + "; ".join(f"{k} fields {v}" for k, v in wrong.items() if v))
    return check_config(ModelConfig(**d), path)


def check_config(cfg: ModelConfig, path: str, names: dict | None = None) -> ModelConfig:
    """cfg, or a ValueError naming the file and the field (names: ours -> the file's) whose value has the
    wrong type or is out of range: "n_layer": "4" or "n_head": 0 would fail later, deep inside the model."""
    name = lambda field: (names or {}).get(field, field)  # noqa: E731
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        kinds = (int, float) if f.type is float else f.type  # HF files write rope_theta 500000, an int
        if not isinstance(v, kinds) or isinstance(v, bool) or (f.type is not str and not v > 0):
            want = "a string" if f.type is str else f"a positive {f.type.__name__}"
            raise ValueError(f"{path}: field {name(f.name)!r} is {json.dumps(v)}, expected {want}")
    if cfg.n_embd % (2 * cfg.n_head):  # RoPE rotates pairs of each head's dimensions
        raise ValueError(f"{path}: field {name('n_embd')!r} is {cfg.n_embd}, expected a multiple of twice "
                         f"{name('n_head')} ({cfg.n_head}): heads of an even width")
    return cfg


# HF LLaDA config.json: the one value of each architecture switch we implement (IGPO.md B.1.1), assumed when
# absent; any other is refused, not silently computed differently (swiglu too: LLaDA's llama block would halve
# ff_proj's output)
HF_FIXED = dict(block_type="llama", activation_type="silu", layer_norm_type="rms",
                layer_norm_with_affine=True, weight_tying=False, include_bias=False, include_qkv_bias=False,
                bias_for_layer_norm=False, rope=True, alibi=False, input_emb_norm=False, scale_logits=False,
                attention_layer_norm=False, clip_qkv=None, block_group_size=1, attention_dropout=0.0,
                residual_dropout=0.0, embedding_dropout=0.0)
HF_NAMES = dict(n_layers="n_layer", n_heads="n_head", d_model="n_embd",  # HF: ours
                mlp_hidden_size="mlp_hidden", embedding_size="vocab_size", rope_theta="rope_theta",
                rms_norm_eps="norm_eps", max_sequence_length="max_seq_len")


def config_from_hf(d: dict) -> ModelConfig:
    """ModelConfig of an HF LLaDA config.json; a ValueError names each field that we don't implement."""
    # embedding_size is the padded row count: 126464
    d = {**d, "embedding_size": d.get("embedding_size") or d.get("vocab_size")}
    # effective_n_kv_heads: n_kv_heads, else 1 for multi-query attention, else n_heads
    kv = d.get("n_kv_heads") or (1 if d.get("multi_query_attention") else d.get("n_heads"))
    bad = [f"{k}={d[k]!r} (we implement {v!r})" for k, v in HF_FIXED.items() if d.get(k, v) != v]
    if kv != d.get("n_heads"):
        bad += [f"n_kv_heads={kv} (we implement n_heads={d.get('n_heads')}: no GQA/MQA)"]
    bad += [f"{k} missing" for k in HF_NAMES if d.get(k) is None]
    if bad:
        raise ValueError(f"unsupported Hugging Face LLaDA config: {'; '.join(bad)}")
    return ModelConfig(**{ours: d[hf] for hf, ours in HF_NAMES.items()}, tokenizer="")


def check_keys(want: dict, have: dict, source: str):
    """want (model), have (checkpoint): key -> shape. Fail loudly on missing, unexpected or mis-shaped
    keys."""
    both = sorted(set(want) & set(have))
    misshaped = [f"{k}: checkpoint {have[k]} vs model {want[k]}" for k in both if have[k] != want[k]]
    bad = [("missing", sorted(set(want) - set(have))), ("unexpected", sorted(set(have) - set(want))),
           ("mis-shaped", misshaped)]
    if any(keys for _, keys in bad):
        raise ValueError(f"{source}: state dict does not match the model:"
                         + "".join(f"\n  {what} keys: {keys}" for what, keys in bad if keys))


def _fill(model, paths: list, source: str, only: str = ""):
    """Copy safetensors files into the parameters of an unsharded model whose keys hold `only`, strictly."""
    from safetensors import safe_open
    files = []
    for p in paths:  # memory-mapped: headers only, until get_tensor
        if not os.path.isfile(p):
            raise FileNotFoundError(f"{p}: no such weights file")
        try:
            files.append(safe_open(p, "pt"))
        except Exception as e:  # safetensors' own error type: a torn or truncated file, say which
            raise ValueError(f"{p}: not a readable safetensors file ({e})") from None
    params = {k: v for k, v in model.state_dict().items() if only in k}  # detached views of the parameters
    check_keys({k: tuple(v.shape) for k, v in params.items()},
               {k: tuple(f.get_slice(k).get_shape()) for f in files for k in f.keys()}, source)
    for f in files:
        for k in f.keys():
            params[k].copy_(f.get_tensor(k))  # one at a time, cast to the parameter's dtype: never two copies


def load(ckpt_dir: str, device="cpu", dtype=torch.float32) -> Transformer:
    """Our checkpoint or an HF LLaDA folder (model.safetensors or index + shards; same keys, IGPO.md
    B.1.3)."""
    files, index = ["model.safetensors"], os.path.join(ckpt_dir, "model.safetensors.index.json")
    model = build(load_config(ckpt_dir), device, seed=None, dtype=dtype)
    if os.path.isfile(index):  # sharded (HF): the files its weight map names
        weight_map = read_json(index).get("weight_map")
        if not (weight_map and isinstance(weight_map, dict) and all(
                isinstance(f, str) for f in weight_map.values())):
            raise ValueError(f"{index}: field 'weight_map' missing or not an object of key -> file name")
        files = sorted(set(weight_map.values()))
    _fill(model, [os.path.join(ckpt_dir, f) for f in files], ckpt_dir)
    return model


def export_hf(model, out_dir: str, shard_size_gb: float = 5.0, rank: int = 0):
    """The model (adapters merged) as an HF LLaDA folder: config.json, shards (decimal GB, as HF counts)
    + index, and the tokenizer folder's tokenizer and remote code (trust_remote_code). Collective; rank 0
    writes, atomically."""
    import shutil
    from safetensors.torch import save_file
    sd, cfg = full_state_dict(model), model.config
    if rank != 0:
        return
    os.makedirs(out_dir, exist_ok=True)
    shards = [{}]
    for k, v in sd.items():
        if shards[-1] and sum(t.nbytes for t in shards[-1].values()) + v.nbytes > shard_size_gb * 1e9:
            shards.append({})
        shards[-1][k] = v.contiguous()
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    for name, shard in zip(names, shards):
        path = os.path.join(out_dir, name)
        _atomic_write(path, lambda tmp: save_file(shard, tmp, metadata={"format": "pt"}))
    total_size = sum(v.nbytes for v in sd.values())
    weight_map = {k: name for name, shard in zip(names, shards) for k in shard}  # key -> its shard's file
    index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    write_json(os.path.join(out_dir, "model.safetensors.index.json"), index)
    shape = {h: getattr(cfg, o) for h, o in HF_NAMES.items()}  # n_layers, d_model, ... under HF's names
    auto_map = dict(AutoConfig="configuration_llada.LLaDAConfig", AutoModel="modeling_llada.LLaDAModelLM")
    hf = dict(architectures=["LLaDAModelLM"], model_type="llada", **HF_FIXED, vocab_size=cfg.vocab_size,
              n_kv_heads=cfg.n_head, rope_full_precision=True, **shape, auto_map=auto_map)
    if cfg.tokenizer == "byte" or os.path.isfile(os.path.join(cfg.tokenizer, "tokenizer.json")):
        from data.tokenizer import EOS, MASK, get_tokenizer, special_id
        ids = [special_id(get_tokenizer(cfg.tokenizer), s) for s in (MASK, EOS, EOS)]  # LLaDA pads with EOS
        hf.update(zip(("mask_token_id", "eos_token_id", "pad_token_id"), ids))
    write_json(os.path.join(out_dir, "config.json"), hf)
    for f in ("tokenizer.json", "tokenizer_config.json", "configuration_llada.py", "modeling_llada.py"):
        src, dst = os.path.join(cfg.tokenizer, f), os.path.join(out_dir, f)
        if os.path.isfile(src) and not os.path.exists(dst):
            shutil.copy(src, out_dir)


def save_lora(model, out_dir: str, rank: int = 0):
    """Adapters only (MBs, not the base's 16 GB) + apply_lora's arguments. Every rank calls it (collective
    gather)."""
    from safetensors.torch import save_file
    sd = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).cpu().contiguous()
          for k, v in model.state_dict().items() if ".lora_" in k}
    if rank == 0:
        os.makedirs(out_dir, exist_ok=True)
        _atomic_write(os.path.join(out_dir, "adapter.safetensors"), lambda tmp: save_file(sd, tmp))
        write_json(os.path.join(out_dir, "adapter_config.json"), model.lora_config)


def load_lora(model, ckpt_dir: str):
    """save_lora's adapters into an unsharded model (applied first if it has none), strictly."""
    c = read_json(os.path.join(ckpt_dir, "adapter_config.json"))
    if getattr(model, "lora_config", c) != c:
        raise ValueError(f"{ckpt_dir}: adapters {c} differ from the model's {model.lora_config}")
    model = model if hasattr(model, "lora_config") else apply_lora(model, **c)
    _fill(model, [os.path.join(ckpt_dir, "adapter.safetensors")], ckpt_dir, only=".lora_")
    return model
