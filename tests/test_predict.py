"""runs/predict.py: its memory accounting against what CPU runs of the code allocate, and the llada-8b
predictions' behaviour. Run: python -m pytest -q tests/test_predict.py"""
import contextlib
import dataclasses
import os
import sys
from types import SimpleNamespace

import pytest
import torch

import model as M
from conftest import REPO, TINY
from eval import generate

sys.path.insert(0, os.path.join(REPO, "runs"))
import predict as P  # noqa: E402


@pytest.mark.parametrize("model,mode", [(model, mode) for model in P.CHECK_MODELS for mode in P.CHECK_MODES])
def test_memory_accounting_matches_what_the_code_allocates(model, mode):
    """Weights, adapters and AdamW states to the byte; each phase's peak (update, the estimator's forward +
    backward, the log-prob forwards, the sampler) within 10% of the live tensor bytes measured on CPU."""
    rows = P.check(model, mode)
    assert {"weights", "AdamW states", "update", "log-prob forwards", "rollouts"} <= {w for w, _, _ in rows}
    for what, predicted, measured in rows:
        if what in ("weights", "adapters (fp32)", "AdamW states"):
            assert predicted == measured, what
        else:
            assert abs(predicted / measured - 1) < 0.10, (what, predicted, measured)


def test_parameter_counts_are_the_models():
    mc = M.PRESETS["llada-8b"]
    big = P.Shape(mc, dataclasses.replace(P.RunConfig(), **P.RUNS["llada-8b"]))
    assert big.params == sum(p.numel() for p in M.build(mc, "meta", seed=None).parameters())
    s = P.check_shape("tiny", "bf16 LoRA")
    net = M.apply_lora(M.build(s.mc, "cpu", seed=0), s.rc.lora_r, s.rc.lora_alpha, 0.0, sorted(s.targets))
    assert s.nl * s.block_lora == sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_rollout_forwards_are_the_samplers(enc):
    """9 prompts x G = 8 = 72 rows: eval.generate (as rollouts() calls it) makes 2 sample() calls of `steps`
    forwards each, as predicted."""
    rc = dataclasses.replace(P.RunConfig(), prompts_per_step=9, group_size=8, gen_len=8, block_len=4, steps=2)
    s = P.Shape(TINY, rc, prompt_len=4, device="cpu", autocast=False)
    model, calls = M.build(TINY, "cpu", seed=0).eval(), []
    model.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0]))
    rt = SimpleNamespace(device="cpu", rank=0, ctx=contextlib.nullcontext())
    generate(model, rt, enc, [[1, 2, 3, 4]] * (s.n * s.G), s.L, rc.block_len, rc.steps, temperature=1.0)
    assert len(calls) == P.round_time(s)["rollout forwards"] == 4 and calls == [64, 64, 8, 8]


def test_estimator_rows_are_the_codes():
    """A log-prob forward's rows under each estimator, as token_logprobs builds them (3 prompts x G = 4):
    mean_field one per prompt, coupled 2 and elbo K per completion; at the 8B shapes their cost follows."""
    import train_igpo as T
    model, calls = M.build(TINY, "cpu", seed=0).eval(), []
    model.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0]))
    comps = torch.randint(0, 256, (12, 8), generator=torch.Generator().manual_seed(0))
    times = {}
    for estimator, K, want in (("mean_field", 1, 3), ("coupled", 1, 24), ("elbo", 3, 36)):
        est = dict(estimator=estimator, estimator_samples=K)
        rc = dataclasses.replace(P.RunConfig(), prompts_per_step=3, group_size=4, gen_len=8, **est)
        calls.clear()
        T.token_logprobs(model, [[1, 2, 3, 4]] * 3, 256, 261, 8, comps, 4, estimator=estimator, samples=K)
        assert calls == [P.Shape(TINY, rc, prompt_len=4, device="cpu", autocast=False).rows] == [want]
        big = dataclasses.replace(P.RunConfig(), **P.RUNS["llada-8b"], **est)
        times[estimator] = P.round_time(P.Shape(M.PRESETS["llada-8b"], big, world=8))
    assert times["mean_field"]["update"] < times["coupled"]["update"] < times["elbo"]["update"]
    assert times["mean_field"]["log-prob"] < times["coupled"]["log-prob"] < times["elbo"]["log-prob"]


def test_weight_init_transient_is_the_builds():
    """gpu_check's mem_gb counts from the start: build() allocates the weights, then draws each in fp32 and
    scales it (two fp32 copies of the largest weight at once)."""
    mc = P.CHECK_MODELS["small-ish"]
    with P.live_bytes_mode() as mode:
        M.build(mc, "cpu", seed=0, dtype=torch.bfloat16)
    s = P.Shape(mc, dataclasses.replace(P.RunConfig(), dtype="bfloat16"))
    assert mode.peak == s.params * 2 + 2 * 4 * s.V * s.C


def by_label(**kw) -> dict:
    return {(label, world): shapes for label, world, shapes in P.variations(**kw)}


def test_llada_8b_predictions_behave():
    v = by_label()
    peak = {k: max(P.phase_memory(shapes["H200"]).values()) for k, shapes in v.items()}
    lora, bf16, fp32 = (f"{c}, gen 256, ckpt on" for c in ("LoRA r=128", "full FT bf16", "full FT fp32"))
    assert peak[(lora, 1)] < peak[(bf16, 1)] < peak[(fp32, 1)]
    for label, world in v:  # checkpointing never costs memory; longer completions never save any
        assert peak[(label.replace("ckpt off", "ckpt on"), world)] <= peak[(label, world)]
        assert peak[(label.replace("gen 512", "gen 256"), world)] <= peak[(label, world)]
    one, eight = v[(lora, 1)]["H200"], v[(lora, 8)]["H200"]
    assert P.static_memory(eight)["weights"] * 8 == P.static_memory(one)["weights"]
    assert P.fits(peak[(lora, 1)], "H200") == P.fits(peak[(lora, 8)], "H200") == "yes"  # B.9's run
    assert P.fits(peak[("LoRA r=128, gen 256, ckpt off", 1)], "H200") == "no"
    t1, t8, a100 = P.round_time(one), P.round_time(eight), P.round_time(v[(lora, 8)]["A100-80GB"])
    assert t8["rollouts"] > t8["update"] > t8["log-prob"]  # whole-canvas sampler steps dominate a round
    assert 5 < t1["rollouts"] / t8["rollouts"] < 8 and a100["rollouts"] > 2.5 * t8["rollouts"]
    assert (t1["rollout forwards"], t8["rollout forwards"], t8["log-prob forwards"]) == (8 * 128, 128, 2)
    hard, easy = (P.round_time(by_label(all_wrong=f)[(lora, 8)]["H200"]) for f in (0.5, 0.0))
    assert easy["inpaint forwards"] == 0 and hard["rollouts"] > t8["rollouts"] > easy["rollouts"]


def test_main_prints_the_table_and_the_check(capsys, monkeypatch):
    P.main([])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| LoRA") or line.startswith("| full FT")]
    assert len(rows) == 24 and "## Assumptions" in out and "| LoRA r=128, gen 256, ckpt on | 8 |" in out
    assert "one IGPO step (LoRA r=128): mem_gb" in out and "bench.py (b) exact sampler" in out
    monkeypatch.setattr(P, "CHECK_MODELS", {"tiny": P.CHECK_MODELS["tiny"]})
    monkeypatch.setattr(P, "CHECK_MODES", {"bf16 LoRA ckpt": P.CHECK_MODES["bf16 LoRA ckpt"]})
    P.main(["--check"])
    out = capsys.readouterr().out
    assert "| tiny | bf16 LoRA ckpt | update |" in out and "| tiny | bf16 LoRA ckpt | rollouts |" in out
