"""
What every script shares (nanochat's common.py is the model): the runtime, and the training checkpoints
that sft.py and train_igpo.py save and resume from. model.py is the model and its weights; this file
builds on it (save, save_lora, write_json), never the other way round.

    (c) runtime:      setup(), shard() (FSDP2), gathered(), run_main(), print0(), parse_args(): the
                      --key=value override helper, and stream_seed(): every random stream's seed.
    (d) checkpoints:  save_checkpoint() (staged, then committed), commit_checkpoint(), resume_point(),
                      load_optimizer().
"""
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

import model as M


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
        # torchrun's environment, or without torchrun rank 0 of 1 over an in-memory store
        kw = {} if "RANK" in os.environ else dict(store=dist.HashStore(), rank=0, world_size=1)
        device_id = dev if use_cuda and kw == {} else None  # NCCL under torchrun: this rank's GPU
        dist.init_process_group("nccl" if use_cuda else "gloo", device_id=device_id, **kw)
    torch.manual_seed(seed)  # one shared seed for init; samplers add the rank themselves
    torch.backends.cuda.matmul.allow_tf32 = True  # no effect on CPU
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_cuda else contextlib.nullcontext()
    return Runtime(rank, world, dev, ctx)


def shard(model: M.Transformer, rt: Runtime) -> M.Transformer:
    """FSDP2 on each block, then the root; the codebase's one world-size branch: at 1, sharding only costs
    time."""
    if rt.world_size == 1:
        return model
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    kw = dict(mp_policy=MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)) \
        if rt.device.type == "cuda" else {}  # bf16 compute, fp32 gradient reduction
    for block in model.blocks:
        fully_shard(block, **kw)
    fully_shard(model, **kw)
    return model


@contextlib.contextmanager
def gathered(model):
    """Keep FSDP2 parameters unsharded for a rollout phase (a no-op unsharded): ranks may then run different
    numbers of forwards (IGPO re-rolls a per-rank count of groups) without deadlocking, and gather once per
    phase."""
    from torch.distributed.fsdp import FSDPModule
    fsdp = [m for m in model.modules() if isinstance(m, FSDPModule)]
    if fsdp:
        model.set_reshard_after_forward(False)  # recurses into the blocks
        [m.unshard() for m in fsdp]
    try:
        yield model
    finally:
        if fsdp:
            [m.reshard() for m in fsdp]
            model.set_reshard_after_forward(True)


def stream_seed(seed: int, step: int, rank: int, phase: str) -> int:
    """The seed of one random stream, a 63-bit hash of (seed, step, rank, phase): rollouts, inpainting, hints,
    prompt masks, evaluation and SFT batches never share a stream across steps, ranks or phases (seeds like
    seed + 7 or seed + 1000 * rank would), and a resumed run draws what the uninterrupted one did. Streams
    every rank draws alike take rank -1."""
    digest = hashlib.blake2b(repr((seed, step, rank, phase)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def run_main(main):
    """Scripts' entry point: bad input is a one-line error; a last barrier (gloo aborts a rank whose peer
    left)."""
    try:
        main()
        dist.is_initialized() and dist.barrier()
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    finally:
        dist.is_initialized() and dist.destroy_process_group()


def print0(*args, **kwargs):
    if int(os.environ.get("RANK", 0)) == 0:
        print(*args, **kwargs, flush=True)


def parse_args(cfg, argv=None, presets: dict | None = None):
    """--key=value overrides of a config dataclass (flag names = field names). --preset=NAME applies a
    named dict from the script's PRESETS first. Unknown keys are an error listing the valid ones."""
    argv = sys.argv[1:] if argv is None else argv
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    if bad := [a for a in argv if not a.startswith("--") or "=" not in a]:
        raise SystemExit(f"bad argument {bad[0]!r}: expected --key=value")
    pairs = [a[2:].split("=", 1) for a in argv]
    if presets and all(k != "preset" for k, _ in pairs):  # no --preset: the default preset still applies
        pairs += [["preset", cfg.preset]]
    bools = {"true": True, "1": True, "false": False, "0": False}
    for key, val in sorted(pairs, key=lambda kv: kv[0] != "preset"):  # the preset first, then overrides
        if key not in fields:
            raise SystemExit(f"unknown flag --{key}; valid flags: {', '.join('--' + k for k in fields)}")
        if key == "preset" and presets is not None:
            if val not in presets:
                raise SystemExit(f"unknown preset {val!r}; known presets: {', '.join(presets)}")
            cfg = dataclasses.replace(cfg, **presets[val])
        typ = type(getattr(cfg, key))
        try:
            val = bools[val.lower()] if typ is bool else typ(val)
        except (KeyError, ValueError):
            raise SystemExit(f"--{key}={val}: expected a {typ.__name__}")
        cfg = dataclasses.replace(cfg, **{key: val})
    return cfg


# ----------------------------------------------------------------------------------------------------
# (d) training checkpoints: weights, adapters, per-rank optimizer state and meta.json in the run folder

def save_checkpoint(model, opt, out_dir: str, step: int, cfg, rank: int):
    """Weights (adapters merged in) + config.json, the adapters alone with LoRA, each rank's optimizer state
    (resuming needs the same world size) and meta.json, staged in out_dir/.next/ and then moved into out_dir:
    a crash at any point leaves the previous checkpoint or the new one, never a mix (commit_checkpoint).
    Every rank calls it (gathering sharded weights is collective)."""
    stage = os.path.join(out_dir, ".next")
    if rank == 0:
        shutil.rmtree(stage, ignore_errors=True)  # what a crashed save left: not part of this checkpoint
    dist.barrier()
    M.save(model, stage, rank=rank)
    if M.lora_modules(model):
        M.save_lora(model, stage, rank=rank)
    os.makedirs(stage, exist_ok=True)
    torch.save(opt.state_dict(), os.path.join(stage, f"optim.{rank}.pt"))
    dist.barrier()
    if rank == 0:  # meta.json marks the staged checkpoint complete: from here on a crash is rolled forward
        M.write_json(os.path.join(stage, "meta.json"), {"step": step, "config": dataclasses.asdict(cfg)})
        commit_checkpoint(out_dir)
    dist.barrier()


def commit_checkpoint(out_dir: str):
    """Move a complete staged checkpoint (out_dir/.next/ with its meta.json) into out_dir, meta.json last;
    drop an incomplete one. Run by rank 0 after each save and before a resume: it finishes an interrupted
    move."""
    stage = os.path.join(out_dir, ".next")
    done = os.path.isfile(os.path.join(stage, "meta.json"))  # else the save itself was cut short: drop it
    for f in sorted(os.listdir(stage) if done else [], key=lambda f: f == "meta.json"):
        os.replace(os.path.join(stage, f), os.path.join(out_dir, f))
    shutil.rmtree(stage, ignore_errors=True)


def resume_point(out_dir: str, rank: int) -> int:
    """--resume: finish (or drop) a save a crash interrupted; -> the step of out_dir's checkpoint, 0 if
    none."""
    if rank == 0:
        commit_checkpoint(out_dir)
    dist.barrier()
    meta = os.path.join(out_dir, "meta.json")
    return json.load(open(meta))["step"] if os.path.isfile(meta) else 0


def load_optimizer(opt, ckpt_dir: str, rank: int):
    """This rank's optimizer state from save_checkpoint: resuming needs the same world size."""
    opt.load_state_dict(torch.load(os.path.join(ckpt_dir, f"optim.{rank}.pt"), weights_only=False))
