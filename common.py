"""
What every script shares (nanochat's common.py is the model): the runtime, and the training checkpoints
that sft.py and train_igpo.py save and resume from. model.py is the model and its weights; this file
builds on it (save, save_lora, write_json), never the other way round.

    (c) runtime:      setup(), shard() (FSDP2), gathered(), run_main(), print0(), on_rank0(), stream_seed()
                      (every random stream's seed), wandb_logger() (optional), and parse_args(): the
                      --key=value override helper, --help, and the settings checks (a rule per field:
                      at_least, between, one_of, int_list, DEVICE, FOLDER, OVERWRITE, LORA_TARGETS, WANDB).
    (d) checkpoints:  locked() (one run per folder), save_checkpoint() (staged, then committed),
                      commit_checkpoint(), finish_checkpoint(), new_run() (never over a run), resume_point(),
                      read_meta(), kept_log(), load_optimizer(), fingerprint(), diverged().
"""
import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.util
import inspect
import io
import itertools
import json
import os
import pathlib
import pickle
import shutil
import sys
import tokenize
from dataclasses import dataclass

import torch
import torch.distributed as dist

import model as M
from data import files


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


def on_rank0(fn, rt: Runtime):
    """fn() on rank 0 only (file moves, reading a run folder); its result, or its one-line error, reaches
    every rank, so all ranks fail alike instead of rank 0 alone while the others wait at a collective."""
    out = [None, None]  # (result, error)
    if rt.rank == 0:
        try:
            out[0] = fn()
        except (ValueError, FileNotFoundError) as e:
            out[1] = e
    if rt.world_size > 1:
        dist.broadcast_object_list(out, src=0)
    if out[1] is not None:
        raise out[1]
    return out[0]


def wandb_logger(cfg, rt: Runtime):
    """--wandb=True (nanoGPT's way): rank 0 also sends each log.jsonl row to Weights & Biases. wandb is
    imported only then and is not a requirement. -> log(row); a no-op when off or on other ranks."""
    if not (cfg.wandb and rt.rank == 0):
        return lambda row: None
    import wandb  # checked at start-up (WANDB)
    wandb.init(project=cfg.wandb_project, name=os.path.basename(os.path.abspath(cfg.out_dir)),
               config=dataclasses.asdict(cfg))
    return lambda row: wandb.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])


# Settings checks. A rule is (ok(value, cfg) -> bool, what a valid value is); a script's RULES maps fields to
# rules, one line each, and parse_args applies them: every bad setting is a one-line error at start-up,
# before any work or writing (not a traceback after an 8B model's 2000 training steps).
def at_least(lo):
    return (lambda v, c: v >= lo), f">= {lo}"


def between(lo, hi):
    return (lambda v, c: lo <= v <= hi), f"in [{lo}, {hi}]"


def one_of(*allowed):
    return (lambda v, c: v in allowed), "one of " + ", ".join(map(repr, allowed))


def int_list(lo, hi, empty_ok=False):
    """Comma-separated integers in [lo, hi] ("" too when empty_ok: the script's default)."""
    def ok(v, c):
        return (empty_ok and v == "") or all(s.strip().isdigit() and lo <= int(s) <= hi for s in v.split(","))
    return ok, f"comma-separated integers in [{lo}, {hi}]"


# setup() would quietly fall back to the CPU for anything but "cpu" when CUDA is missing
DEVICE = (lambda v, c: v in ("", "cpu") or (v == "cuda" and torch.cuda.is_available())), \
    "'' (cuda if available, else cpu), 'cpu', or 'cuda' on a machine with CUDA"
FOLDER = (lambda v, c: v != "" and not os.path.isfile(v)), "a folder, not a file or ''"
# --overwrite=True starts a new run, --resume=True continues the folder's: not both
OVERWRITE = (lambda v, c: not (v and c.resume)), "False with --resume=True (which continues the folder's run)"
WANDB = (lambda v, c: not v or importlib.util.find_spec("wandb") is not None), \
    "False unless the wandb package is installed (pip install wandb; it is not a requirement)"
LORA_TARGETS = (lambda v, c: v == "all" or set(v.split(",")) <= set(M.BLOCK_LINEARS)), \
    f"'all' or comma-separated names from {','.join(M.BLOCK_LINEARS)}"


def field_comments(cls) -> dict:
    """{field: its comment} from a config dataclass's source (for --help): the comment lines just above
    the field, then the one at the end of its line. tokenize finds the comments, so a '#' in a string is
    not one."""
    src = inspect.getsource(cls)
    tokens = tokenize.generate_tokens(io.StringIO(src).readline)
    comments = {t.start[0]: t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT}
    names, notes, above = {f.name for f in dataclasses.fields(cls)}, {}, []
    for i, line in enumerate(src.splitlines(), 1):
        name = line.split(":")[0].strip()
        if line.strip().startswith("#"):
            above.append(comments[i])
            continue
        if name in names:
            notes[name] = "; ".join(above + ([comments[i]] if i in comments else []))
        above = []
    return notes


def usage(cfg, presets: dict | None) -> str:
    """--help: the script's docstring, every flag with its default and comment, the presets."""
    doc = (sys.modules[type(cfg).__module__].__doc__ or "").strip()
    notes = field_comments(type(cfg))
    lines = [doc, "", "flags (--key=value; the defaults shown before any preset):"]
    for f in dataclasses.fields(cfg):
        flag = f"--{f.name}={getattr(cfg, f.name)}"
        lines.append(f"  {flag:<36} {notes.get(f.name, '')}".rstrip())
    for name, values in (presets or {}).items():
        sets = ", ".join(f"{k}={v}" for k, v in values.items()) or "the defaults"
        lines.append(f"--preset={name}: {sets}")
    return "\n".join(lines)


def parse_args(cfg, argv=None, presets: dict | None = None, rules: dict | None = None):
    """--key=value overrides of a config dataclass (flag names = field names). --preset=NAME applies a
    named dict from the script's PRESETS first. Unknown keys are an error listing the valid ones; then every
    rule of `rules` is checked. --help prints the flags with their defaults and comments."""
    argv = sys.argv[1:] if argv is None else argv
    if "--help" in argv or "-h" in argv:
        print(usage(cfg, presets))
        raise SystemExit(0)
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    if bad := [a for a in argv if not a.startswith("--") or "=" not in a]:
        raise ValueError(f"bad argument {bad[0]!r}: expected --key=value (--help lists the flags)")
    pairs = [a[2:].split("=", 1) for a in argv]
    if presets and all(k != "preset" for k, _ in pairs):  # no --preset: the default preset still applies
        pairs += [["preset", cfg.preset]]
    bools = {"true": True, "1": True, "false": False, "0": False}
    for key, val in sorted(pairs, key=lambda kv: kv[0] != "preset"):  # the preset first, then overrides
        if key not in fields:
            raise ValueError(f"unknown flag --{key}; valid flags: {', '.join('--' + k for k in fields)}")
        if key == "preset" and presets is not None:
            if val not in presets:
                raise ValueError(f"unknown preset {val!r}; known presets: {', '.join(presets)}")
            cfg = dataclasses.replace(cfg, **presets[val])
        typ = type(getattr(cfg, key))
        try:
            val = bools[val.lower()] if typ is bool else typ(val)
        except (KeyError, ValueError):
            raise ValueError(f"--{key}={val}: expected a {typ.__name__}") from None
        cfg = dataclasses.replace(cfg, **{key: val})
    for key, (ok, want) in (rules or {}).items():
        if not ok(getattr(cfg, key), cfg):
            raise ValueError(f"--{key}={getattr(cfg, key)}: expected {want}")
    return cfg


# ----------------------------------------------------------------------------------------------------
# (d) training checkpoints: weights, adapters, per-rank optimizer state and meta.json in the run folder

def _take_lock(folder: str, advice: str):
    """-> (fd, created): an exclusive flock on folder/.lock, which then holds our PID; held by another
    process, a ValueError naming it, then `advice`. The kernel drops an flock when its process dies, so a
    lock file left by a killed run is never stale: the next run takes it. (Linux flock works across NFS v4
    clients too.)"""
    if os.path.isfile(folder):
        raise ValueError(f"{folder}: a file, not a folder")
    created = not os.path.isdir(folder)
    path = os.path.join(folder, ".lock")
    while True:
        try:  # a path under a file, a folder we may not write in: one line naming it, not a traceback
            os.makedirs(folder, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT)
        except OSError as e:
            raise ValueError(f"{folder}: cannot write there ({e.strerror}: {e.filename})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode().strip() or "?"
            os.close(fd)
            raise ValueError(f"{folder} is in use by another run (pid {pid}, {path}): {advice}") from None
        # its last holder may have deleted the file between our open and our flock: lock the current one
        if os.path.exists(path) and os.path.samestat(os.fstat(fd), os.stat(path)):
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd, created


def _release_lock(folder: str, fd: int, created: bool):
    with contextlib.suppress(FileNotFoundError):  # still held: a process that opened it meanwhile re-opens
        os.remove(os.path.join(folder, ".lock"))
    if created and not os.listdir(folder):  # a start-up error: leave no trace of the run
        os.rmdir(folder)
    os.close(fd)


@contextlib.contextmanager
def locked(out_dir: str, rt: Runtime):
    """Hold a run folder for this run (rank 0 holds the lock): a second run on it gets a one-line error
    instead of both writing into one folder (one's meta.json beside the other's weights, interleaved
    logs)."""
    held = on_rank0(lambda: _take_lock(out_dir, "wait for it to end, or pass another --out_dir"), rt)
    try:
        yield
    finally:
        if rt.rank == 0:
            _release_lock(out_dir, *held)


def script_name(cfg) -> str:
    """The script a config belongs to: "sft" for sft.Config, also when sft.py runs as __main__."""
    return os.path.splitext(os.path.basename(inspect.getfile(type(cfg))))[0]


def save_checkpoint(model, opt, out_dir: str, step: int, cfg, rank: int, init_state: dict | None = None):
    """Weights (adapters merged in) + config.json, the adapters alone with LoRA, each rank's optimizer state
    (resuming needs the same world size) and meta.json (with init_state: the fingerprint of the --init_from
    folder the run started from), staged in out_dir/.next/ and then moved into out_dir: a crash at any point
    leaves the previous checkpoint or the new one, never a mix (commit_checkpoint). Every rank calls it
    (gathering sharded weights is collective)."""
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
        meta = {"step": step, "script": script_name(cfg), "world_size": dist.get_world_size(),
                "config": dataclasses.asdict(cfg), "init_from_state": init_state}
        M.write_json(os.path.join(stage, "meta.json"), meta)
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


def finish_checkpoint(ckpt_dir: str, rt: Runtime) -> dict:
    """For readers of a run folder (eval.py, sample.py, --init_from): a save cut short while its files were
    moving in (.next/meta.json is there) would show new weights beside the old meta.json; finish the move
    first, holding the folder's lock, so never under a live run. -> the folder's fingerprint() then."""
    def finish():
        if os.path.isfile(os.path.join(ckpt_dir, ".next", "meta.json")):
            held = _take_lock(ckpt_dir, "it is moving a checkpoint in; try again when it is done")
            commit_checkpoint(ckpt_dir)
            _release_lock(ckpt_dir, *held)
        return fingerprint(ckpt_dir)
    return on_rank0(finish, rt)


# what a run leaves in its folder: a checkpoint (or one a crash left half moved in), and a summary when it has
# finished (train_igpo.py --ckpt_interval=0 saves no checkpoint). A log alone is of a run stopped before its
# first checkpoint: it has nothing to resume, and a new run replaces it.
RUN_FILES = ("meta.json", os.path.join(".next", "meta.json"), "summary.json")


def aside(folder: str) -> str:
    """Where --overwrite=True moves a folder's run: the first free sibling FOLDER.old1, FOLDER.old2, ..."""
    base = os.path.abspath(folder)
    return next(f"{base}.old{k}" for k in itertools.count(1) if not os.path.lexists(f"{base}.old{k}"))


def _new_run(cfg) -> int:
    held = [f for f in RUN_FILES if os.path.isfile(os.path.join(cfg.out_dir, f))]
    if held and not cfg.overwrite:
        resume = "" if cfg.resume else "--resume=True to continue it, "
        move = f"--overwrite=True to move it to {aside(cfg.out_dir)} first"
        raise ValueError(f"{cfg.out_dir} holds a run ({', '.join(held)}) that a new run would replace: pass "
                         f"{resume}another --out_dir, or {move}")
    if held:  # every entry but the lock this run holds, one rename each: nothing is copied or deleted
        dest = aside(cfg.out_dir)
        os.mkdir(dest)
        for f in os.listdir(cfg.out_dir):
            if f != ".lock":
                os.replace(os.path.join(cfg.out_dir, f), os.path.join(dest, f))
        print(f"--overwrite: moved the run in {cfg.out_dir} to {dest}", flush=True)
    return 0


def new_run(cfg, rt) -> int:
    """A run started without --resume -> its first step, 0. Rerunning a command never replaces the run in its
    folder: a folder holding one (RUN_FILES) is refused, naming the ways on; with --overwrite=True that run is
    first moved to a new sibling folder (aside()), never deleted."""
    return on_rank0(lambda: _new_run(cfg), rt)


# a resume continues the same run, so it may change only these (how long, how often, where it runs and logs)
RESUMABLE = ("resume", "out_dir", "max_steps", "max_minutes", "log_interval", "ckpt_interval",
             "eval_interval", "n_eval", "device", "grad_ckpt", "wandb", "wandb_project", "overwrite")


def resume_point(cfg, rt: Runtime, init_state: dict | None = None) -> int:
    """--resume: finish (or drop) a save a crash interrupted -> the step of out_dir's checkpoint. A folder
    without a checkpoint (new, empty, or of a run stopped before its first one) starts a new run and says so:
    one command then both starts and continues a run (a job that is requeued), and a finished run is still
    never replaced (new_run). The checkpoint must be this script's, at this world size (the optimizer state is
    per rank), with the same settings but the RESUMABLE ones (the optimizer's saved state would silently keep
    its old betas and weight decay, and any other change would make the run no longer one run), from the same
    --init_from folder as it was (init_state, its fingerprint now: IGPO's KL reference and a LoRA run's base
    weights are loaded from it again)."""
    def point():
        commit_checkpoint(cfg.out_dir)
        path = os.path.join(cfg.out_dir, "meta.json")
        if not os.path.isfile(path):
            _new_run(cfg)
            print(f"--resume: {cfg.out_dir} holds no checkpoint: starting a new run", flush=True)
            return 0
        meta = read_meta(cfg.out_dir, ("step", "world_size", "config"))
        script, new = script_name(cfg), dataclasses.asdict(cfg)
        if meta.get("script") != script:
            made_by = f"{meta['script']}.py" if "script" in meta else "another script (or an older version)"
            raise ValueError(f"--resume: {cfg.out_dir} holds a checkpoint of {made_by}, not of {script}.py; "
                             f"start a new run from it with --init_from={cfg.out_dir}")
        if meta["world_size"] != rt.world_size:
            sizes = f"saved at world size {meta['world_size']}, this run has {rt.world_size}"
            raise ValueError(f"--resume: {cfg.out_dir} was {sizes} (the optimizer state is per rank): "
                             "resume on as many ranks")
        old = meta["config"]
        differ = [k for k in new if k in old and old[k] != new[k]]
        if bad := [f"--{k}={new[k]} (the run has {old[k]!r})" for k in differ if k not in RESUMABLE]:
            free = ", ".join(k for k in RESUMABLE if k not in ("resume", "out_dir", "overwrite"))
            raise ValueError(f"--resume: {', '.join(bad)}; a resume continues the run as it was (only {free} "
                             f"may change): start a new run from it with --init_from={cfg.out_dir}")
        if meta.get("init_from_state", init_state) != init_state:  # older checkpoints lack it: unchecked
            raise ValueError(f"--resume: --init_from={cfg.init_from} has changed since the run started from "
                             f"it (its step, or its files' sizes or times, differ from {path}: "
                             "init_from_state), and a resume loads weights from it again (IGPO's KL "
                             "reference, a LoRA base): start a new run (another --out_dir, or "
                             "--overwrite=True)")
        changed = "".join(f"; {k} {old[k]} -> {new[k]}" for k in differ if k != "resume")
        print(f"resuming {cfg.out_dir} at step {meta['step']}: the checkpoint's weights and optimizer state, "
              f"every setting as it was{changed}", flush=True)
        return meta["step"]
    return on_rank0(point, rt)


META = {  # the meta.json fields readers use: (is the value valid, what a valid value is)
    "step": (lambda v: type(v) is int and v >= 0, "an integer >= 0"),
    "world_size": (lambda v: type(v) is int and v >= 1, "an integer >= 1"),
    "config": (lambda v: isinstance(v, dict), "an object (the run's settings)"),
}


def read_meta(ckpt_dir: str, fields=("step",)) -> dict:
    """ckpt_dir/meta.json with its `fields` checked: a ValueError names the file and the field."""
    path = os.path.join(ckpt_dir, "meta.json")
    meta = M.read_json(path)
    for k in fields:
        ok, want = META[k]
        if not ok(meta.get(k)):
            got = f"is {json.dumps(meta[k])}" if k in meta else "is missing"
            raise ValueError(f"{path}: field {k!r} {got}, expected {want}")
    return meta


def kept_log(out_dir: str, step: int, rt: Runtime, names=("log.jsonl", "samples.jsonl")) -> list[dict]:
    """The rows of out_dir's logs up to `step`, the checkpoint a run resumes from (a fresh run, step 0, keeps
    none); the files are rewritten without the rest, so each step is logged once and the summary covers the
    whole run. A last line without its newline was torn by a kill and is dropped: our logs are append-only, a
    whole line per write (user files, --data, keep theirs). Any other line that is not a JSON object is an
    error naming the file and line, raised before any file is rewritten. -> log.jsonl's kept rows, on every
    rank."""
    def keep():
        kept = {}
        for name in names:
            path = os.path.join(out_dir, name)
            data = pathlib.Path(files.need_file(path)).read_bytes() if os.path.lexists(path) else b""
            rows = files.read_jsonl(path, data[:data.rfind(b"\n") + 1]) if step > 0 else []
            kept[name] = [r for _, r in rows if r.get("step", 0) <= step]
        for name in names:
            path = os.path.join(out_dir, name)
            if os.path.isfile(path):
                text = "".join(json.dumps(r) + "\n" for r in kept[name])
                M._atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(text))
        return kept[names[0]]
    return on_rank0(keep, rt)


def load_optimizer(opt, ckpt_dir: str, rank: int):
    """This rank's optimizer state from save_checkpoint: resuming needs the same world size. A file cut short
    (a full disk, a copy) is a ValueError naming it."""
    path = files.need_file(os.path.join(ckpt_dir, f"optim.{rank}.pt"))
    try:
        state = torch.load(path, weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:  # what torch.load raises for a torn file
        raise ValueError(f"{path}: not a readable optimizer state ({str(e).splitlines()[0]})") from None
    opt.load_state_dict(state)


def fingerprint(ckpt_dir: str) -> dict:
    """What a checkpoint folder holds now, cheaply: its meta.json step and each weights or config file's size
    and modification time (a save replaces them; hashing an 8B model's 16 GB would take minutes)."""
    if not os.path.isdir(ckpt_dir):
        raise FileNotFoundError(f"{ckpt_dir}: no such checkpoint folder")
    read = ("config.json", "model.safetensors.index.json", "meta.json")  # besides the .safetensors files
    names = sorted(f for f in os.listdir(ckpt_dir) if f.endswith(".safetensors") or f in read)
    stats = {f: os.stat(os.path.join(ckpt_dir, f)) for f in names}
    step = read_meta(ckpt_dir)["step"] if "meta.json" in names else None
    return {"step": step, "files": {f: [s.st_size, s.st_mtime_ns] for f, s in stats.items()}}


def diverged(step: int, out_dir: str, **values) -> ValueError:
    """The error that stops a run at a non-finite loss or gradient norm (values: their names and values),
    raised before the step is logged or saved: out_dir keeps its last checkpoint, and no JSON file gets a NaN.
    Stopping, not skipping the step: a skip would hide a run gone unstable (its next step starts from the same
    weights and optimizer state), and the run would no longer be the one its settings and log describe."""
    shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
    saved = os.path.isfile(os.path.join(out_dir, "meta.json"))
    kept = f"keeps its checkpoint of step {read_meta(out_dir)['step']}" if saved else "has no checkpoint"
    return ValueError(f"step {step}: {shown}: the run diverged (a lower --lr or a longer --warmup may help) "
                      f"and stopped before saving this step: {out_dir} {kept}")
