"""Model, weights I/O and runtime helpers. Run: python -m pytest -q tests/test_model.py"""
import dataclasses
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

import model as M
from common import parse_args, stream_seed
from conftest import TINY


def test_attention_is_bidirectional(tiny):
    x = torch.randint(0, 256, (1, 12))
    y = x.clone()
    y[0, 9] = (y[0, 9] + 1) % 256  # change a later token
    assert not torch.allclose(tiny(x)[0, 2], tiny(y)[0, 2])  # an earlier position sees it


def test_meta_init_equals_direct_init():
    direct = M.Transformer(TINY)
    direct.init_weights(seed=3)
    meta = M.build(TINY, "cpu", seed=3)
    for (k, a), (_, b) in zip(direct.state_dict().items(), meta.state_dict().items()):
        assert torch.equal(a, b), k


def test_logits_slice_equals_full_forward(tiny):
    x = torch.randint(0, 256, (2, 16))
    assert torch.allclose(tiny(x, out=(5, 11)), tiny(x)[:, 5:11], atol=1e-6)


def test_left_padded_rows_compute_bit_for_bit_what_each_row_computes_alone():
    # the tiny preset's shapes; rows of 16+ tokens (MKL's sgemm rounds otherwise below ~16 rows at K = 384)
    net = M.build(M.PRESETS["tiny"], "cpu", seed=0).eval()
    g = torch.Generator().manual_seed(0)
    rows = [torch.randint(0, 256, (n,), generator=g).tolist() for n in (16, 23, 30, 23, 17)]
    T = max(map(len, rows))
    padded = torch.tensor([[0] * (T - len(r)) + r for r in rows])
    mask = torch.tensor([[False] * (T - len(r)) + [True] * len(r) for r in rows])
    logits = net(padded, mask)
    for i, r in enumerate(rows):  # masked pad keys instead (F.sdpa's attn_mask) differ by ~1e-7 here
        assert torch.equal(logits[i, T - len(r):], net(torch.tensor([r]))[0])


def test_rope_is_llada_modelling_code_to_the_bit():
    """LLaDA's RotaryEmbedding: inv_freq = 1 / theta^(arange(0, d, 2) / d), then cos/sin of cat(freqs, freqs)
    over a table of positions; theta^(-arange / d) differs by an ulp in 18 of 64 frequencies at the 8B."""
    with torch.device("meta"):
        net = M.Transformer(M.PRESETS["llada-8b"])
    cos, sin = net.rope_table("cpu")
    d, theta = 128, 500000.0
    inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float) / d))
    freqs = torch.einsum("i , j -> i j", torch.arange(4096, dtype=torch.float), inv_freq)
    positions = torch.cat((freqs, freqs), dim=-1)
    assert torch.equal(cos, positions.cos()) and torch.equal(sin, positions.sin())
    assert (theta ** (-torch.arange(0, d, 2, dtype=torch.float) / d) != inv_freq).sum() == 18


def test_safetensors_round_trip_is_exact(tiny, tmp_path):
    M.save(tiny, str(tmp_path))
    back = M.load(str(tmp_path))
    assert back.config == tiny.config
    for (k, a), (_, b) in zip(tiny.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]  # temp files renamed away


def test_missing_and_misshaped_keys_are_named(tiny, tmp_path):
    M.save(tiny, str(tmp_path))
    path = str(tmp_path / "model.safetensors")
    sd = load_file(path)
    del sd["model.transformer.ln_f.weight"]
    sd["model.transformer.blocks.0.q_proj.weight"] = torch.zeros(3, 3)
    sd["model.transformer.extra.weight"] = torch.zeros(1)
    save_file(sd, path)
    with pytest.raises(ValueError) as e:
        M.load(str(tmp_path))
    msg = str(e.value)
    assert "model.transformer.ln_f.weight" in msg and "missing" in msg
    assert "blocks.0.q_proj.weight: checkpoint (3, 3) vs model (32, 32)" in msg
    assert "model.transformer.extra.weight" in msg and "unexpected" in msg


def test_missing_checkpoint_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        M.load(str(tmp_path / "nope"))


def test_parse_args_overrides_coerces_and_rejects_unknown_flags():
    @dataclasses.dataclass
    class C:
        preset: str = "a"
        lr: float = 1.0
        inpaint: bool = True
        steps: int = 3
    presets = {"a": {}, "b": {"steps": 7, "lr": 2.0}}
    c = parse_args(C(), ["--lr=0.5", "--inpaint=False", "--preset=b"], presets)
    assert (c.lr, c.inpaint, c.steps, c.preset) == (0.5, False, 7, "b")  # preset first, then overrides
    with pytest.raises(ValueError, match="--lr, --inpaint"):
        parse_args(C(), ["--nope=1"])
    with pytest.raises(ValueError, match="expected a int"):
        parse_args(C(), ["--steps=x"])


def test_presets_have_llada_8b_shape():
    cfg = M.PRESETS["llada-8b"]
    with torch.device("meta"):
        n = sum(p.numel() for p in M.Transformer(cfg).parameters())
    shape = (cfg.n_layer, cfg.n_embd, cfg.mlp_hidden, cfg.vocab_size, cfg.rope_theta)
    assert shape == (32, 4096, 12288, 126464, 500000.0)
    assert 8.0e9 < n < 8.1e9


def test_random_streams_never_coincide_across_steps_ranks_and_phases():
    """Every stream of a run (train_igpo, eval, sft) over 2000 steps x ranks -1..7 x phases: all distinct, and
    the seed + 7 / seed + 1000 * rank coincidences of shifted arithmetic seeds are gone."""
    phases = ["prompts", "hints", "rollouts", "inpaint", "dropout", "eval", "probes", "eval/256", "sft_rows",
              "sft_noise"] + [f"prompt_mask/{it}" for it in range(4)]
    seeds = [stream_seed(1337, step, rank, phase) for step in range(2000) for rank in range(-1, 8)
             for phase in phases]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2 ** 63 for s in seeds)
    assert stream_seed(1337, 5, 0, "inpaint") != stream_seed(1337, 12, 0, "rollouts")
    assert stream_seed(1337, 5, 0, "rollouts") == stream_seed(1337, 5, 0, "rollouts")  # resume draws alike
