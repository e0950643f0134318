"""GRPO/IGPO pieces: advantages, hint canvases, entropy filter, losses, the shared log-prob forward,
rollouts with inpainting. Run: python -m pytest -q tests/test_igpo.py"""
import math
import random
import sys
from types import SimpleNamespace

import pytest
import torch

import model as M
import train_igpo as T
from common import Runtime
from conftest import REPO, TINY
from data import arith
from data.tokenizer import decode

RT = Runtime(0, 1, torch.device("cpu"), __import__("contextlib").nullcontext())


def test_equal_rewards_give_zero_advantage():
    r = torch.tensor([[3.0, 3.0, 3.0], [0.5, 0.5, 0.5], [0.0, 3.0, 0.0]])
    adv = T.group_advantages(r)
    assert torch.equal(adv[:2], torch.zeros(2, 3))
    assert torch.allclose(adv[2], torch.tensor([-1.0, 2.0, -1.0]))
    assert torch.equal(T.group_advantages(r, std_norm=True)[:2], torch.zeros(2, 3))


def test_hint_chunks_are_5_to_10_tokens_and_floor_eta_n_are_revealed_in_place():
    cfg = T.Config()
    trace = list(range(100, 160))  # 60 distinct trace tokens
    for seed in range(50):
        rng = random.Random(seed)
        chunks = T.hint_chunks(len(trace), random.Random(seed), 5, 10)
        assert all(5 <= e - s <= 10 for s, e in chunks) and chunks[0][0] == 0
        assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:])) and len(trace) - chunks[-1][1] < 5
        eta = rng.uniform(0.2, 0.6)
        pinned = T.hint_canvas(trace, chunks, 64, eta, random.Random(seed), cfg, mask_id=-1)
        pos = torch.nonzero(pinned != -1).flatten()
        assert all(pinned[p].item() == trace[p] for p in pos)  # every pin sits at its trace position
        revealed = [c for c in chunks if (pinned[c[0]:c[1]] != -1).all()]
        assert len(revealed) == math.floor(eta * len(chunks))
        assert sum(e - s for s, e in revealed) == len(pos)  # whole chunks only


def test_no_answer_token_is_pinned():
    from data import arith
    cfg, ex = T.Config(), arith.make(random.Random(3), 4)
    enc = __import__("data.tokenizer", fromlist=["x"]).get_tokenizer("byte")
    hint = enc.encode_ordinary(arith.hint(ex))
    answer_start = len(enc.encode_ordinary(ex["trace"])) - len(ex["answer"])
    for seed in range(30):
        rng = random.Random(seed)
        chunks = T.hint_chunks(len(hint), rng, cfg.chunk_min, cfg.chunk_max)
        pinned = T.hint_canvas(hint, chunks, 32, 0.99, rng, cfg, mask_id=-1)
        assert (pinned[answer_start:] == -1).all()


def test_official_reveal_count_and_stretch_flags():
    cfg = T.Config(hint_reveal_last=True, hint_stretch=True)
    trace = list(range(1000, 1100))
    for seed in range(20):
        rng = random.Random(seed)
        chunks = T.hint_chunks(100, rng, 5, 10)
        pinned = T.hint_canvas(trace, chunks, 256, 0.2, rng, cfg, mask_id=-1)
        assert (pinned[226:] == -1).all()  # the 30-token free tail
        pos = torch.nonzero(pinned != -1).flatten()
        orig = pinned[pos] - 1000  # which trace token sits where
        # trace order kept, pushed right by the stretch
        assert (orig.diff() > 0).all() and (pos >= orig).all()
        last = chunks[-1]
        assert set(range(*last)) <= set(orig.tolist())  # the last chunk is always revealed
        assert pos[0] == int(orig[0] * 1.5)  # 226/100 tokens: stretched by the 1.5 cap


def test_entropy_filter_keeps_exactly_the_top_fraction_of_hint_positions():
    hint = torch.zeros(3, 12, dtype=torch.bool)
    hint[0, 2:12] = True  # 10 hint positions -> keep 2
    hint[1, 0:3] = True   # 3 -> keep max(1, 0) = 1
    ent = torch.arange(36, dtype=torch.float).view(3, 12).flip(1)
    m = T.entropy_filter(hint, ent, keep=0.2)
    assert m[0].tolist() == [True] * 4 + [False] * 8  # positions 2, 3 have the highest entropy
    assert m[1].tolist() == [True] + [False] * 2 + [True] * 9
    assert m[2].all()  # no hints: every position kept


def test_gspo_grpo_and_k3_equal_hand_computation_on_2x3():
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-0.2, -0.3, -0.4]])
    old = torch.tensor([[-1.1, -1.8, -0.5], [-0.2, -0.5, -0.4]])
    ref = torch.tensor([[-1.0, -1.0, -1.0], [-0.3, -0.3, -0.3]])
    adv = torch.tensor([1.0, -2.0])
    m = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    beta, lo, hi = 0.01, 0.8, 1.2
    k3 = lambda lp, rf: math.exp(rf - lp) - (rf - lp) - 1
    kept = [(b, t) for b in range(2) for t in range(3) if m[b, t]]
    # GSPO: s_b = exp(mean over kept positions of logp - old)
    s = [math.exp(sum(logp[b, t] - old[b, t] for t in range(3) if m[b, t]) / m[b].sum()) for b in range(2)]
    surrogate = lambda r, a: -min(r * a, min(max(r, lo), hi) * a)  # clipped, negated
    per = {(b, t): surrogate(s[b], adv[b]) + beta * k3(logp[b, t], ref[b, t]) for b, t in kept}
    loss, kl, clip = T.policy_loss(logp, old, ref, adv, m, T.Config(beta=beta))
    assert abs(loss.item() - sum(per.values()) / len(kept)) < 1e-6
    assert abs(kl.item() - sum(k3(logp[b, t], ref[b, t]) for b, t in kept) / len(kept)) < 1e-6
    # token-level GRPO ratio
    ratio = lambda b, t: math.exp(logp[b, t] - old[b, t])
    per = {(b, t): surrogate(ratio(b, t), adv[b]) + beta * k3(logp[b, t], ref[b, t]) for b, t in kept}
    loss, _, clip = T.policy_loss(logp, old, ref, adv, m, T.Config(beta=beta, ratio="token"))
    assert abs(loss.item() - sum(per.values()) / len(kept)) < 1e-6
    assert abs(clip.item() - 1 / len(kept)) < 1e-6  # only (1, 1): ratio exp(0.2) > 1.2


def test_shared_prompt_forward_equals_per_sample_forwards(tiny, ids):
    prompts = [[5, 6, 7, 8], [9, 10]]
    comps = torch.randint(0, 256, (6, 8))
    shared, ent = T.token_logprobs(tiny, prompts, ids["eos"], ids["mask"], 8, comps, 3, with_entropy=True)
    for i in range(6):
        one = T.token_logprobs(tiny, [prompts[i // 3]], ids["eos"], ids["mask"], 8, comps[i:i + 1], 1)
        assert torch.allclose(shared[i], one[0], atol=1e-5)
    assert torch.equal(ent[0], ent[2]) and not torch.equal(ent[0], ent[3])


def test_mean_field_is_one_forward_per_prompt_bit_identical_to_the_direct_computation(tiny, ids):
    """d1's estimate: prompt (masked with p_mask_prompt by the seed's generator) + L masks, one forward of the
    n prompts; completion i's token j is read off prompt i // G's logits at j."""
    prompts, G, L, pad, mask = [[5, 6, 7, 8], [9, 10], [11, 12, 13]], 2, 8, ids["eos"], ids["mask"]
    comps = torch.randint(0, 256, (6, L), generator=torch.Generator().manual_seed(0))
    calls = []
    hook = tiny.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape))
    for p_mask in (0.0, 0.3):
        x, pad_mask = T.left_pad(prompts, pad, "cpu")
        if p_mask:
            hit = torch.rand(x.shape, generator=torch.Generator().manual_seed(5)) < p_mask
            x = torch.where(hit & pad_mask, mask, x)
        x = torch.cat([x, torch.full((3, L), mask)], 1)
        full = torch.cat([pad_mask, torch.ones(3, L, dtype=torch.bool)], 1)
        lp = torch.log_softmax(tiny(x, full, out=(4, 4 + L)).float(), -1)  # (3, L, V)
        want = torch.stack([lp[i // G, torch.arange(L), comps[i]] for i in range(6)])
        want_ent = (-(lp.exp() * lp).sum(-1)).repeat_interleave(G, 0)
        calls.clear()
        got, ent = T.token_logprobs(tiny, prompts, pad, mask, L, comps, G, p_mask, 5, with_entropy=True)
        assert torch.equal(got, want) and torch.equal(ent, want_ent) and calls == [(3, 4 + L)]
    hook.remove()


class Scripted(torch.nn.Module):
    """A model whose logits at a position are a fixed vector of its position plus the sum of fixed vectors of
    every real token in the row (the mask token has its own): what a masked position predicts depends on
    which of the others are masked. Positions count real tokens, as in model.py. Records each input."""
    V = 12

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.tok, self.pos, self.calls = torch.randn(self.V, self.V, generator=g), torch.randn(32, self.V), []

    def forward(self, idx, pad_mask=None, out=None):
        self.calls.append(idx.clone())
        real = torch.ones_like(idx, dtype=torch.bool) if pad_mask is None else pad_mask
        seen = (self.tok[idx] * real[..., None]).sum(1, keepdim=True)  # (B, 1, V)
        logits = seen + self.pos[(real.long().cumsum(-1) - 1).clamp(min=0)]  # (B, T, V)
        return logits if out is None else logits[:, out[0]:out[1]]


def direct_logprobs(net, prompt, comp, masked):
    """Log-probs and entropies (L,) of comp's tokens in one forward of prompt + comp with `masked` masked."""
    x = torch.tensor(prompt + torch.where(masked, Scripted.V - 1, comp).tolist())
    lp = torch.log_softmax(net(x[None])[0, len(prompt):], -1)  # (L, V)
    return lp[torch.arange(len(comp)), comp], -(lp.exp() * lp).sum(-1)


def test_coupled_scores_every_token_once_in_the_forward_where_it_is_masked():
    """Two complementary masks per completion (round(t L) positions and the rest, t per completion), prompt
    clean; one call of 2 rows per completion; each token's log-prob and entropy from its masked forward."""
    net, prompts, G, L, mask = Scripted(), [[1, 2, 3], [4, 5]], 3, 8, Scripted.V - 1
    comps = torch.randint(0, Scripted.V - 2, (6, L), generator=torch.Generator().manual_seed(1))
    masks, w = T.completion_masks(6, L, "coupled", 1, torch.Generator().manual_seed(7), "cpu")
    assert masks.shape == (2, 6, L) and (masks.sum(0) == 1).all() and (w == 1).all()  # each position once
    assert len(set(masks[0].sum(1).tolist())) > 1  # a masking ratio of its own per completion
    logp, ent = T.token_logprobs(net, prompts, mask - 1, mask, L, comps, G, seed=7, with_entropy=True,
                                 estimator="coupled")
    assert len(net.calls) == 1 and net.calls[0].shape == (12, 3 + L) and (net.calls[0][:, :3] != mask).all()
    for i in range(6):
        for m in masks[:, i]:
            want, want_ent = direct_logprobs(net, prompts[i // G], comps[i], m)
            assert torch.allclose(logp[i, m], want[m], atol=1e-6) and torch.allclose(ent[i, m], want_ent[m])


def test_elbo_draws_are_stratified_and_weighted_by_one_over_t():
    """K = L draws: draw k masks exactly k + 1 positions (t_k in [k/K, (k+1)/K)), weight 1 / (K t); a token's
    estimate is the weighted sum over the draws where it is masked, its entropy their mean (0 if none)."""
    L, K = 6, 6
    masks, w = T.completion_masks(50, L, "elbo", K, torch.Generator().manual_seed(0), "cpu")
    counts = masks.sum(-1)  # (K, 50)
    assert (counts == torch.arange(1, K + 1)[:, None]).all() and torch.allclose(w[..., 0], 1 / counts.float())
    net, prompt, G = Scripted(), [1, 2, 3], 4
    comps = torch.randint(0, Scripted.V - 2, (G, L), generator=torch.Generator().manual_seed(1))
    logp, ent = T.token_logprobs(net, [prompt], 9, 11, L, comps, G, seed=3, with_entropy=True,
                                 estimator="elbo", samples=2)
    masks, w = T.completion_masks(G, L, "elbo", 2, torch.Generator().manual_seed(3), "cpu")
    assert net.calls[0].shape == (2 * G, 3 + L)  # K rows per completion, one call
    for i in range(G):
        per_draw = [direct_logprobs(net, prompt, comps[i], m) for m in masks[:, i]]
        want = sum(w[k, i] * torch.where(masks[k, i], lp, 0.0) for k, (lp, _) in enumerate(per_draw))
        ent_sum = sum(torch.where(masks[k, i], e, 0.0) for k, (_, e) in enumerate(per_draw))
        assert torch.allclose(logp[i], want, atol=1e-6)
        assert torch.allclose(ent[i], ent_sum / masks[:, i].sum(0).clamp(min=1), atol=1e-6)


def test_elbo_estimate_is_unbiased_for_the_exhaustive_elbo():
    """L = 4: the ELBO's expectation over every masked count l (uniform on 1..L) and every subset of l
    positions, (L / l) sum over the masked positions of log p, against the mean of 4000 estimates (K = 3):
    the sequence sum and each token's term within 4 standard errors."""
    import itertools
    net, prompt, L, N = Scripted(), [1, 2, 3], 4, 4000
    comp = torch.tensor([3, 7, 0, 5])
    exact = torch.zeros(L)
    for n_masked in range(1, L + 1):
        subsets = list(itertools.combinations(range(L), n_masked))
        for S in subsets:
            masked = torch.zeros(L, dtype=torch.bool)
            masked[list(S)] = True
            lp, _ = direct_logprobs(net, prompt, comp, masked)
            exact += (1 / L) * (1 / len(subsets)) * (L / n_masked) * torch.where(masked, lp, 0.0)
    est = T.token_logprobs(net, [prompt], 9, 11, L, comp.expand(N, L), N, seed=0, estimator="elbo", samples=3)
    for got, want in [(est.sum(1), exact.sum())] + [(est[:, j], exact[j]) for j in range(L)]:
        se = got.std() / N ** 0.5
        assert 0 < se and abs(got.mean() - want) < 4 * se, (got.mean(), want, se)


@pytest.mark.parametrize("estimator,K", [("mean_field", 1), ("coupled", 1), ("elbo", 3)])
def test_old_and_new_logprobs_of_a_round_see_the_same_masks(tiny, estimator, K, monkeypatch):
    """update()'s new log-probs at lr 0 equal the old ones computed as train_loop does (mask_seeds): the same
    masks (and prompt masks) in every inner iteration."""
    prompts = [[5, 6, 7], [8, 9]]
    comps = torch.randint(0, 256, (4, 8), generator=torch.Generator().manual_seed(0))
    seen, loss = [], T.policy_loss
    record = lambda logp, old, *a: seen.append((logp, old)) or loss(logp, old, *a)  # noqa: E731
    monkeypatch.setattr(T, "policy_loss", record)
    opt = torch.optim.AdamW(tiny.parameters(), lr=0.0)
    for p_mask in (0.0, 0.2):  # one seed for the round; d1's prompt masks: one per inner iteration
        cfg = T.Config(group_size=2, gen_len=8, mu=2, lr=0.0, beta=0.0, estimator=estimator,
                       estimator_samples=K, p_mask_prompt=p_mask)
        with torch.no_grad():
            olds = [T.token_logprobs(tiny, prompts, 256, 261, 8, comps, 2, p_mask, s, with_entropy=True,
                                     estimator=estimator, samples=K) for s in T.mask_seeds(cfg, 3, 0)]
        seen.clear()
        T.update(tiny, opt, RT, prompts, comps, olds, None, torch.ones(4), torch.ones(4, 8), cfg, 3, 256, 261)
        assert len(seen) == 4 and all(torch.allclose(new, old, atol=1e-6) for new, old in seen)
    assert not torch.equal(olds[0][0], olds[1][0])  # the prompt mask is drawn anew each inner iteration


def fake_task(hint_text="ZZZZZZZZZZZZZZZZZZZZ"):
    """Right iff the completion holds 5 Z's in a row: a random model never writes that, a hinted one may."""
    ok = lambda text, ex: "ZZZZZ" in text or ex["easy"]
    return SimpleNamespace(correct=ok, reward=lambda t, ex: float(ok(t, ex)), hint=lambda ex: hint_text,
                           target=lambda ex: hint_text, prompt=lambda ex, kind="train": ex["q"])


def test_inpainting_fires_only_for_all_wrong_groups_and_replaces_with_correct_rollouts(tiny, enc):
    rt = Runtime(0, 1, torch.device("cpu"), __import__("contextlib").nullcontext())
    cfg = T.Config(group_size=4, gen_len=16, block_len=8, steps=8, eta_low=0.0, eta_high=0.9, temperature=1.0)
    exs = [{"q": "a", "easy": True}, {"q": "b", "easy": False}, {"q": "c", "easy": False}]
    from data.tokenizer import chat
    prompts = [chat(enc, ex["q"]) for ex in exs]
    calls = []
    orig = T.generate
    T.generate = lambda *a, **k: calls.append(len(a[3])) or orig(*a, **k)
    try:
        r = T.rollouts(tiny, rt, fake_task(), enc, exs, prompts, cfg, random.Random(0), 0)
    finally:
        T.generate = orig
    assert r["all_wrong"].tolist() == [False, True, True]
    assert calls == [12, 8]  # 3 groups x 4 rollouts, then 4 inpainted rollouts for each all-wrong group
    assert not r["hint_mask"][:4].any()  # the group with a correct rollout is untouched
    replaced = r["hint_mask"].any(1)
    # at most floor(0.5 * G) per group
    assert 0 < r["n_replaced"] == replaced.sum() and r["n_replaced"] <= 2 * 2
    for i in torch.nonzero(replaced).flatten().tolist():
        assert "ZZZZZ" in decode(enc, r["comps"][i]) and r["correct"].flatten()[i]
        first = (i // 4) * 4  # the group's first row
        assert replaced[first: first + int(replaced[first:first + 4].sum())].all()  # slots 0..K-1


def test_grpo_never_inpaints(tiny, enc):
    rt = Runtime(0, 1, torch.device("cpu"), __import__("contextlib").nullcontext())
    cfg = T.Config(group_size=2, gen_len=16, block_len=8, steps=8, inpaint=False)
    from data.tokenizer import chat
    exs, prompts = [{"q": "b", "easy": False}], [chat(enc, "b")]
    r = T.rollouts(tiny, rt, fake_task(), enc, exs, prompts, cfg, random.Random(0), 0)
    assert r["all_wrong"].all() and r["n_replaced"] == 0 and not r["hint_mask"].any()


def test_loss_aggregation_token_mean_or_the_papers_row_means():
    """Token mean over the group's kept positions (official code), or per row, then over rows (Eq. 3/5)."""
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-0.2, -0.3, -0.4]])
    old = torch.tensor([[-1.1, -1.8, -0.5], [-0.2, -0.5, -0.4]])
    adv = torch.tensor([1.0, -2.0])
    m = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    cfg = dict(beta=0.0, ratio="token")
    per = [[-min(math.exp(logp[b, t] - old[b, t]) * adv[b],
                 min(max(math.exp(logp[b, t] - old[b, t]), 0.8), 1.2) * adv[b]) for t in range(3)]
           for b in range(2)]
    token = (per[0][0] + sum(per[1])) / 4
    rows = (per[0][0] / 1 + sum(per[1]) / 3) / 2
    assert abs(T.policy_loss(logp, old, None, adv, m, T.Config(**cfg))[0].item() - token) < 1e-6
    got = T.policy_loss(logp, old, None, adv, m, T.Config(**cfg, loss_agg="sequence"))[0].item()
    assert abs(got - rows) < 1e-6 and abs(token - rows) > 0.01


def test_d1_completion_mask_keeps_up_to_the_first_eos_in_loss_kl_and_gspo_mean():
    eos = 9
    comps = torch.tensor([[1, eos, 2, eos], [1, 2, 3, 4], [eos, eos, eos, eos]])
    valid = T.upto_eos(comps, eos)
    assert valid.tolist() == [[True, True, False, False], [True] * 4, [True, False, False, False]]
    logp, old = -torch.rand(3, 4, generator=torch.Generator().manual_seed(0)), -torch.ones(3, 4)
    ref, adv, v = old - 0.5, torch.tensor([1.0, -1.0, 0.5]), valid.float()
    loss, kl, _ = T.policy_loss(logp, old, ref, adv, v, T.Config(ratio_all_positions=True), v)
    s = torch.exp(((logp - old) * v).sum(1) / v.sum(1))[:, None]  # GSPO over the valid positions only
    d = ref - logp
    k3 = d.exp() - d - 1
    per = -torch.min(s * adv[:, None], s.clamp(0.8, 1.2) * adv[:, None]) + 0.01 * k3
    assert torch.allclose(loss, (per * v).sum() / v.sum()) and torch.allclose(kl, (k3 * v).sum() / v.sum())


def test_lr_schedules_constant_after_warmup_or_the_official_linear_decay():
    def hf_linear(step, warmup, total):  # transformers' get_linear_schedule_with_warmup, its lr_lambda
        if step < warmup:
            return float(step) / float(max(1, warmup))
        return max(0.0, float(total - step) / float(max(1, total - warmup)))
    cfg = T.Config(lr=1.0, mu=4, max_steps=30, warmup=50, lr_schedule="linear")
    assert all(abs(T.lr_at(k, cfg) - hf_linear(k, 50, 120)) < 1e-12 for k in range(130))
    const = T.Config(lr=1.0, mu=4, warmup=2)
    assert [T.lr_at(k, const) for k in range(12)] == [0.5] * 4 + [1.0] * 8  # warmup in rounds
    # update() sets the lr of every optimizer step: round 3 of 30 -> steps 12..15
    net = M.build(TINY, "cpu", seed=0)
    opt, used = torch.optim.AdamW(net.parameters()), []
    step = opt.step
    opt.step = lambda: used.append(opt.param_groups[0]["lr"]) or step()
    prompts, comps = [[5, 6, 7]], torch.randint(0, 256, (2, 8))
    olds = [(torch.zeros(2, 8), torch.zeros(2, 8))]
    T.update(net, opt, RT, prompts, comps, olds, None, torch.ones(2), torch.ones(2, 8),
             T.Config(group_size=2, gen_len=8, mu=4, max_steps=30, warmup=50, lr_schedule="linear", lr=1.0),
             3, 256, 261)
    assert used == [hf_linear(k, 50, 120) for k in range(12, 16)]


def test_hints_are_cut_once_per_group_unless_hint_rechunk_official_text_included(tiny, enc, monkeypatch):
    from data import files
    seen = []
    canvas = T.hint_canvas
    monkeypatch.setattr(T, "hint_canvas", lambda trace, chunks, *a: seen.append((trace, chunks)) or
                        canvas(trace, chunks, *a))
    ex = {"q": "b", "easy": False, "trace": "one two three four five six seven eight nine ten",
          "answer": "10", "response": "one two three four five six seven eight nine ten\nThe answer is: 10"}
    task = fake_task()
    task.official_hint = files.official_hint
    from data.tokenizer import chat
    for rechunk in (False, True):
        seen.clear()
        cfg = T.Config(group_size=4, gen_len=96, block_len=32, steps=6, hint_rechunk=rechunk,
                       hint_with_answer=True, chunk_min=2, chunk_max=4)
        T.rollouts(tiny, RT, task, enc, [ex], [chat(enc, "b")], cfg, random.Random(0), 0)
        assert len(seen) == 4 and decode(enc, seen[0][0]) == "<reasoning>\n" + ex["response"]
        assert (len({tuple(c) for _, c in seen}) == 1) != rechunk  # one segmentation, or one per rollout


def completions_of(enc, texts, L):
    """Token id lists of exactly L tokens (EOS padding), as generate() returns them."""
    from data.tokenizer import EOS, special_id
    return [(enc.encode_ordinary(t) + [special_id(enc, EOS)] * L)[:L] for t in texts]


def test_official_reward_grades_the_first_box_by_string_and_drives_the_trigger(enc, monkeypatch):
    from data import arith, gsm8k
    ex = {"question": "q", "trace": "t", "answer": "72"}
    ours, official = T.graded(gsm8k, "ours"), T.graded(gsm8k, "official")
    cases = [("<answer>\n\\boxed{72}\n</answer>", True, True),
             ("\\boxed{72.0}", True, False),                # compared as strings
             ("\\boxed{5} then \\boxed{72}", True, False),  # the first box only
             ("#### 72\nThe answer is: 72", True, False)]   # no box at all
    for text, by_ours, by_official in cases:
        assert (ours.correct(text, ex), official.correct(text, ex)) == (by_ours, by_official), text
    assert official.reward("<reasoning>\nx\n</reasoning>\n<answer>\n\\boxed{72}\n</answer>", ex) == 3.75
    with pytest.raises(ValueError, match="has none"):
        T.graded(arith, "official")
    # rollouts write "\boxed{72.0}" (right for ours, wrong for the official), inpainted ones "\boxed{72}"
    fake = lambda model, rt, enc_, rows, L, *a, pinned=None, **k: completions_of(  # noqa: E731
        enc, ["\\boxed{72}" if pinned is not None else "\\boxed{72.0}"] * len(rows), L)
    monkeypatch.setattr(T, "generate", fake)
    cfg = T.Config(group_size=4, gen_len=24, block_len=8, steps=8)
    ex = {**ex, "trace": "3 times 24 is 72"}
    for task, fired in ((ours, False), (official, True)):
        r = T.rollouts(None, RT, task, enc, [ex], [[1, 2]], cfg, random.Random(0), 0)
        assert r["all_wrong"].tolist() == [fired] and r["n_replaced"] == (2 if fired else 0)
        assert r["correct"].sum().item() == (2 if fired else 4)


def test_hint_only_canvases_leak_the_answer_only_from_the_official_text(enc):
    """runs/hint_only.py on GSM8K-shaped rows: our hints (no answer line) never grade correct alone; the
    official hint text does by our reward ("#### X" / "The answer is: X" fallbacks), never by the official
    reward (it has no box)."""
    sys.path.insert(0, f"{REPO}/runs")
    import hint_only as H
    rows = [{"question": "q", "trace": f"She buys {i} apples at 3 dollars each.\nShe pays {i}*3 = {3 * i}.",
             "answer": str(3 * i)} for i in range(10, 40)]
    got = H.shares(rows, enc, H.Config())
    assert got["ours", "paper"] == got["ours", "official"] == (0.0, 0.0)
    assert all(got["official", p][0] > 0 and got["official", p][1] == 0 for p in H.PLACEMENTS)


def test_every_round_draws_equal_shares_of_the_toy_kinds():
    train = arith.load("train", n=400, kinds=("easy", "hard"))
    for step in range(5):
        picks = T.draw_prompts(len(train), 16, 2, seed=1, step=step)
        assert len(set(picks)) == 16 and [train[i]["kind"] for i in picks].count("hard") == 8
    assert T.draw_prompts(400, 16, 1, 1, 0) != T.draw_prompts(400, 16, 1, 1, 1)  # a new draw each round
    assert T.draw_prompts(400, 16, 1, 1, 3) == T.draw_prompts(400, 16, 1, 1, 3)  # (seed, step) only
