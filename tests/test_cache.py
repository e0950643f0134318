"""The cached and parallel-decoding samplers (Fast-dLLM style).
Run: python -m pytest -q tests/test_cache.py"""
import pytest
import torch

from sample import KVCache, left_pad, sample

MODES = [dict(cache="prefix"), dict(cache="dual"), dict(threshold=0.0045),
         dict(cache="dual", threshold=0.0045)]


def prompts_of(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (n,), generator=g).tolist() for n in lengths]


def pins(ids, B, gen_len):
    p = torch.full((B, gen_len), ids["mask"])
    p[0, 1:4] = torch.tensor([65, 66, 67])  # hints in the first block
    p[-1, gen_len - 5:] = 70  # and in the last one, visible to (and cached for) every earlier block
    return p


def test_a_cached_slice_computes_what_the_whole_canvas_does(tiny):
    """Left padding: the slice's RoPE positions and key mask are the whole canvas's."""
    ids, prompt_mask = left_pad(prompts_of([3, 9, 6]), 0, "cpu")
    x = torch.cat([ids, torch.randint(0, 256, (3, 16))], 1)
    pad_mask = torch.cat([prompt_mask, prompt_mask.new_ones(3, 16)], 1)
    lo, hi, T = 9 + 4, 9 + 8, x.shape[1]
    want = tiny(x, pad_mask, out=(lo, hi))
    kv = KVCache(tiny.config.n_layer)
    assert torch.equal(tiny(x, pad_mask, out=(lo, hi), kv=kv), want)  # the refresh is the plain forward
    for e in (T, hi):  # prefix: the block and all after it; dual: the block only
        kv.start = lo
        got = tiny(x[:, lo:e], pad_mask, out=(0, hi - lo), kv=kv)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_refreshing_every_step_equals_the_exact_sampler(tiny, ids, cache):
    args = (tiny, prompts_of([4, 9, 6]), 16, 4, 8, ids["mask"], ids["eos"])
    exact = sample(*args, pinned=pins(ids, 3, 16))
    assert torch.equal(sample(*args, pinned=pins(ids, 3, 16), cache=cache, refresh=1), exact)
    assert torch.equal(sample(*args, cache=cache, refresh=1), sample(*args))


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_keeps_prompt_and_pins_and_leaves_no_mask(tiny, ids, mode):
    prompts, pinned, seen, inputs = prompts_of([4, 9, 6]), pins(ids, 3, 16), [], []
    x_prompt, _ = left_pad(prompts, ids["eos"], "cpu")
    hook = tiny.register_forward_pre_hook(lambda m, a: inputs.append(a[0].clone()))
    out = sample(tiny, prompts, 16, 8, 8, ids["mask"], ids["eos"], temperature=1.0, pinned=pinned,
                 generator=torch.Generator().manual_seed(0), on_step=lambda c: seen.append(c.clone()), **mode)
    hook.remove()
    keep = pinned != ids["mask"]
    assert all(torch.equal(c[keep], pinned[keep]) for c in seen + [out])
    assert not (out == ids["mask"]).any()
    full = [x for x in inputs if x.shape[1] == 9 + 16]
    assert full and all(torch.equal(x[:, :9], x_prompt) for x in full)
    # a whole-canvas forward (the refresh) opens the block, then the block (+ the rest for prefix)
    if "cache" in mode:
        assert [x.shape[1] for x in inputs[:4]] == [25] + [8 if mode["cache"] == "dual" else 16] * 3


@pytest.mark.parametrize("mode", MODES)
def test_padded_batch_equals_single_rows(tiny, ids, mode):
    prompts = prompts_of([3, 9, 6])
    batch = sample(tiny, prompts, 16, 8, 16, ids["mask"], ids["eos"], **mode)
    for i, p in enumerate(prompts):
        assert torch.equal(batch[i], sample(tiny, [p], 16, 8, 16, ids["mask"], ids["eos"], **mode)[0])


class Peaked(torch.nn.Module):
    """A stand-in model whose confidence we know: token 65 everywhere, p ~ 0.92 at all but the last 3
    positions."""

    def __init__(self, vocab_size=264):
        super().__init__()
        self.w, self.V = torch.nn.Parameter(torch.zeros(())), vocab_size

    def forward(self, idx, pad_mask=None, out=None, kv=None):
        logits = torch.zeros(*idx.shape, self.V)
        logits[..., 65] = (torch.arange(idx.shape[1]) < idx.shape[1] - 3) * 8.0  # e^8 / (e^8 + 263) = 0.92
        return logits[:, out[0]:out[1]]


def test_threshold_unmasks_at_least_the_schedule_and_ends_blocks_early(tiny, ids):
    args = (tiny, prompts_of([5, 7]), 16, 8, 8, ids["mask"], ids["eos"])
    # no probability exceeds 1: the schedule alone
    assert torch.equal(sample(*args, threshold=1.0), sample(*args))
    seen, peaked = [], Peaked()
    peaked.config = tiny.config
    out = sample(peaked, prompts_of([2, 2]), 8, 8, 4, ids["mask"], ids["eos"], threshold=0.5,
                 on_step=lambda c: seen.append((c == ids["mask"]).sum(1).tolist()))
    assert not (out == ids["mask"]).any()
    # 5 confident, then the schedule's 2 (of 2 a step), then what is left
    assert seen == [[3, 3], [1, 1], [0, 0]]
