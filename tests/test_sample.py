"""Sampler invariants and equality with LLaDA's reference algorithm and IGPO's early exit.
Run: python -m pytest -q tests/test_sample.py"""
from types import SimpleNamespace

import pytest
import torch

from conftest import TINY
import model as M

from sample import num_transfer_tokens, sample


def reference_generate(model, prompt, gen_len, block_len, steps, mask_id):
    """LLaDA's generate() at temperature 0, written plainly: the whole canvas through the model every
    step, confidence -inf after the current block and at unmasked positions (a MASK left in an earlier
    block stays a candidate), per-row top-k. The softmax is float64, as IGPO's sampler (LLaDA: the logits'
    dtype)."""
    x = torch.cat([prompt, torch.full((prompt.shape[0], gen_len), mask_id)], 1)
    P, n_blocks = prompt.shape[1], gen_len // block_len
    for b in range(n_blocks):
        block = x[:, P + b * block_len: P + (b + 1) * block_len]
        n_masked = (block == mask_id).sum(1)
        per_step = steps // n_blocks
        counts = [[n // per_step + (i < n % per_step) for i in range(per_step)] for n in n_masked.tolist()]
        for i in range(per_step):
            mask_index = x == mask_id
            logits = model(x).double()
            x0 = logits.argmax(-1)
            p = torch.softmax(logits, -1).gather(-1, x0[..., None]).squeeze(-1)
            p[:, P + (b + 1) * block_len:] = -float("inf")
            x0 = torch.where(mask_index, x0, x)
            conf = torch.where(mask_index, p, torch.tensor(-float("inf"), dtype=torch.float64))
            for j in range(x.shape[0]):
                _, sel = torch.topk(conf[j], k=counts[j][i])
                x[j, sel] = x0[j, sel]
    return x[:, P:]


def prompts_of(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (n,), generator=g).tolist() for n in lengths]


def test_transfer_schedule_is_front_loaded_and_adds_up():
    s = num_transfer_tokens(torch.tensor([10, 3, 0]), 4)
    assert s.tolist() == [[3, 3, 2, 2], [1, 1, 1, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("gen_len,block_len,steps", [(16, 16, 16), (16, 4, 8), (12, 4, 12)])
def test_temperature_zero_equals_reference_generate(tiny, ids, gen_len, block_len, steps):
    prompts = prompts_of([7, 7])
    ours = sample(tiny, prompts, gen_len, block_len, steps, ids["mask"], ids["eos"])
    ref = reference_generate(tiny, torch.tensor(prompts), gen_len, block_len, steps, ids["mask"])
    assert torch.equal(ours, ref)


def test_no_mask_left_and_per_step_counts_add_up(tiny, ids):
    seen = []
    count = lambda c: seen.append((c != ids["mask"]).sum(1))  # filled positions per row after each step
    out = sample(tiny, prompts_of([5, 9]), 16, 8, 8, ids["mask"], ids["eos"], temperature=1.0,
                 generator=torch.Generator().manual_seed(0), on_step=count)
    assert not (out == ids["mask"]).any()
    per_step = torch.diff(torch.stack([torch.zeros(2, dtype=torch.long)] + seen), dim=0)
    assert per_step.tolist() == [[2, 2]] * 8  # 8 masks per block over 4 steps: 2 a step


def test_pinned_tokens_are_kept_and_skip_the_budget(tiny, ids):
    pinned = torch.full((2, 16), ids["mask"])
    pinned[0, 1:4] = torch.tensor([65, 66, 67])   # hints in the first block
    pinned[1, 12:16] = torch.tensor([70, 71, 72, 73])  # a hint in a later block is visible from the start
    seen = []
    out = sample(tiny, prompts_of([6, 6]), 16, 8, 4, ids["mask"], ids["eos"], pinned=pinned,
                 on_step=lambda c: seen.append(c.clone()))
    keep = pinned != ids["mask"]
    assert torch.equal(out[keep], pinned[keep])
    assert all(torch.equal(c[keep], pinned[keep]) for c in seen)  # never overwritten, at any step
    assert not (out == ids["mask"]).any()
    # row 0: 5 free positions in block 0 over 2 steps -> 3 then 2; row 1: 8 -> 4, 4
    first = (seen[0][:, :8] != ids["mask"]).sum(1) - keep[:, :8].sum(1)
    assert first.tolist() == [3, 4]


def test_hints_in_later_blocks_are_visible_from_the_first_step(tiny, ids):
    pinned = torch.full((1, 16), ids["mask"])
    pinned[0, 10:16] = torch.tensor([33] * 6)
    inputs = []
    hook = tiny.register_forward_pre_hook(lambda m, args: inputs.append(args[0].clone()))
    sample(tiny, prompts_of([6]), 16, 8, 16, ids["mask"], ids["eos"], pinned=pinned)
    hook.remove()
    assert len(inputs) == 10  # block 0: 8 steps; block 1: 2 free positions -> 2 steps with work, 6 skipped
    assert all(torch.equal(x[0, 6 + 10:], pinned[0, 10:]) for x in inputs)


def test_prompt_is_never_changed(tiny, ids):
    prompts = prompts_of([4, 8])
    x = []
    sample(tiny, prompts, 8, 8, 8, ids["mask"], ids["eos"], on_step=lambda c: x.append(c))
    assert all(c.shape == (2, 8) for c in x)  # the callback and output cover the canvas only
    assert prompts == prompts_of([4, 8])


def test_padded_batch_equals_single_rows(tiny, ids):
    prompts = prompts_of([3, 9, 6])
    batch = sample(tiny, prompts, 16, 8, 16, ids["mask"], ids["eos"])
    for i, p in enumerate(prompts):
        assert torch.equal(batch[i], sample(tiny, [p], 16, 8, 16, ids["mask"], ids["eos"])[0])


def test_temperature_zero_is_deterministic_and_seeds_reproduce(tiny, ids):
    args = (tiny, prompts_of([5, 5]), 16, 8, 16, ids["mask"], ids["eos"])
    assert torch.equal(sample(*args), sample(*args))
    a = sample(*args, temperature=1.5, generator=torch.Generator().manual_seed(1))
    b = sample(*args, temperature=1.5, generator=torch.Generator().manual_seed(1))
    c = sample(*args, temperature=1.5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    r = sample(*args, remasking="random", generator=torch.Generator().manual_seed(1))
    assert not (r == ids["mask"]).any()


@pytest.mark.parametrize("gen_len,block_len,steps,plen,match", [
    (10, 4, 8, 4, "not divisible by block_len"),
    (16, 8, 7, 4, "not divisible by the number of blocks"),
    (16, 8, 8, 120, "exceeds the model's max_seq_len"),
])
def test_bad_settings_are_clear_errors(tiny, ids, gen_len, block_len, steps, plen, match):
    with pytest.raises(ValueError, match=match):
        sample(tiny, prompts_of([plen]), gen_len, block_len, steps, ids["mask"], ids["eos"])


def test_show_prints_the_whole_canvas_each_step_with_masks_and_pinned_hints_visible(tiny, tmp_path, capsys):
    import model as M
    import sample as S
    M.save(tiny, str(tmp_path))
    flags = ["--prompt=12", "--hint=ab_c\\n", "--gen_len=16", "--block_len=8", "--steps=8", "--show=True"]
    S.main([f"--ckpt={tmp_path}"] + flags)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prompt: 12" and all(lines[1 + i].startswith(f"{i:4d}  ") for i in range(9))
    canvases = [line[6:] for line in lines[1:10]]  # step 0, then one line per sampler step
    assert canvases[0] == "[[ab]]\u2591[[c\u21b5]]" + "\u2591" * 11  # 16 positions, 5 of them pinned
    masks = [c.count(S.MASK_CELL) for c in canvases]
    assert masks == [12, 11, 10, 9, 8, 6, 4, 2, 0]  # block 1: 4 free, one a step; block 2: 8 free, two a step
    assert all(c.startswith("[[ab]]") and c[7:13] == "[[c\u21b5]]" for c in canvases)  # hints never move
    assert all(len(c) == len(canvases[0]) for c in canvases)  # one character a position: columns align
class Scripted(torch.nn.Module):
    """A stand-in model: logits = a fixed table over (position, token), scaled down along the canvas (earlier
    positions are surer), plus `script(x, logits)` on top. Called like the model (pad_mask, out, kv)."""

    def __init__(self, script=lambda x, logits: None, V=16):
        super().__init__()
        self.config = SimpleNamespace(max_seq_len=64, n_layer=1)
        table = torch.randn(64, V, generator=torch.Generator().manual_seed(0))
        self.table = torch.nn.Parameter(table * torch.linspace(8, 2, 64)[:, None])
        self.script, self.calls = script, 0

    def forward(self, x, pad_mask=None, out=None, kv=None):
        logits = self.table[:x.shape[1]].expand(x.shape[0], -1, -1).clone()
        self.script(x, logits)
        self.calls += 1
        return logits if out is None else logits[:, out[0]:out[1]]


def test_a_mask_the_model_wrote_in_an_earlier_block_is_filled_later_as_in_llada():
    """The last step of block 0 writes MASK at the one position left there; in block 1 that position is the
    surest, so LLaDA fills it first and leaves one of block 1's masked (a block-only sampler: the reverse)."""
    V, mask_id, P = 16, 15, 4

    def script(x, logits):
        logits[..., mask_id] = 50.0 if model.calls == 7 else -50.0  # 8 steps per block: block 0's last
        if model.calls >= 8:
            logits[:, P:P + 8] *= 10.0
    model = Scripted(script, V)
    prompt = torch.randint(0, 8, (2, P), generator=torch.Generator().manual_seed(1))
    ref = reference_generate(model, prompt, 16, 8, 16, mask_id)
    model.calls = 0
    ours = sample(model, prompt.tolist(), 16, 8, 16, mask_id, 14)
    assert torch.equal(ours, ref)
    rows, cols = (ours == mask_id).nonzero().T
    assert rows.tolist() == [0, 1] and (cols >= 8).all()  # one MASK a row, in block 1


def official_early_exit_generate(model, prompt, pinned, gen_len, block_len, steps, mask_id, eos_id):
    """A port of the official IGPO sampler at temperature 0 (facebookresearch/igpo utils/generate.py:836-922):
    prompt and hints fixed; after each block, if every row's block is all EOS, every MASK left becomes EOS."""
    P = prompt.shape[1]
    x = torch.cat([prompt, pinned], 1)
    generation = torch.zeros_like(x, dtype=torch.bool)
    generation[:, P:] = pinned == mask_id
    fixed, steps = ~generation, steps // (gen_len // block_len)
    for b in range(gen_len // block_len):
        lo, hi = P + b * block_len, P + (b + 1) * block_len
        block_masks = (x[:, lo:hi] == mask_id) & generation[:, lo:hi]
        if not block_masks.any():
            continue
        counts = num_transfer_tokens(block_masks.sum(1), steps)
        for i in range(steps):
            mask_index = (x == mask_id) & generation
            if not mask_index.any():
                break
            logits = model(x)
            x0 = logits.argmax(-1)
            p = torch.softmax(logits.double(), -1).gather(-1, x0[..., None]).squeeze(-1)
            p[:, hi:] = -torch.inf
            p[fixed] = -torch.inf
            x0 = torch.where(mask_index, x0, x)
            conf = torch.where(mask_index, p, -torch.inf)
            take = torch.zeros_like(x, dtype=torch.bool)
            for j in range(x.shape[0]):
                if counts[j, i] > 0:
                    take[j, torch.topk(conf[j], k=int(counts[j, i])).indices] = True
            take &= mask_index
            x[take] = x0[take]
        if (x[:, lo:hi] == eos_id).all():
            x[(x == mask_id) & generation] = eos_id
            return x[:, P:]
    return x[:, P:]


def test_eos_fill_is_the_official_early_exit():
    """Block 1 is all EOS in every row: blocks 2-3 are not sampled, their free positions (the gap before a
    hint in block 3 too) become EOS although the model prefers other tokens there; the hint stays."""
    V, mask_id, eos_id, P = 16, 15, 14, 3

    def script(x, logits):
        logits[:, P + 8:P + 16, eos_id] = 100.0  # block 1: EOS, surely
        logits[:, P + 16:, eos_id] = -100.0      # later: anything but EOS
    model = Scripted(script, V)
    prompt = torch.randint(0, 8, (3, P), generator=torch.Generator().manual_seed(2))
    pinned = torch.full((3, 32), mask_id)
    pinned[1, 26:29] = torch.tensor([5, 6, 7])  # a hint in block 3
    want = official_early_exit_generate(model, prompt, pinned.clone(), 32, 8, 16, mask_id, eos_id)
    model.calls = 0
    got = sample(model, prompt.tolist(), 32, 8, 16, mask_id, eos_id, pinned=pinned, eos_fill=True)
    assert torch.equal(got, want) and model.calls == 8  # 2 blocks of 4 steps, not 4 blocks
    assert (got[:, 8:] == eos_id).sum().item() == 3 * 24 - 3  # all EOS after block 0, but the hint
    assert torch.equal(got[1, 26:29], pinned[1, 26:29])
    full = sample(model, prompt.tolist(), 32, 8, 16, mask_id, eos_id, pinned=pinned)
    assert torch.equal(full[:, :16], got[:, :16]) and not (full[:, 16:] == eos_id).any()


def test_greedy_generations_do_not_depend_on_the_batch():
    """Batch sizes 1, 7 and 64, prompts of 3-29 tokens (left padding mixed in): the same tokens (fp32,
    CPU)."""
    net = M.build(TINY, "cpu", seed=1).eval()
    g = torch.Generator().manual_seed(3)
    lengths = torch.randint(3, 30, (64,), generator=g).tolist()
    prompts = [torch.randint(0, 256, (n,), generator=g).tolist() for n in lengths]
    outs = [torch.cat([sample(net, prompts[i:i + bs], 16, 8, 16, 261, 256) for i in range(0, 64, bs)])
            for bs in (1, 7, 64)]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
