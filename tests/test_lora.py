"""LoRA adapters: no-op at init, merge/unmerge, frozen base, lora_off, adapter files, plain checkpoints.
Run: python -m pytest -q tests/test_lora.py"""
import pytest
import torch

import model as M
from conftest import TINY

X = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))


def lora_model(seed=0, perturb=True, **kw):
    """TINY with adapters (official r/alpha ratio, so scale 0.5), B perturbed so the adapters matter."""
    model = M.apply_lora(M.build(TINY, "cpu", seed=0), r=4, alpha=2.0, dropout=0.05, **kw).eval()
    if perturb:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in M.lora_modules(model):
                m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.1)
    return model


def test_zero_initialised_adapters_leave_outputs_unchanged(tiny):
    model = lora_model(perturb=False)
    assert all(m.lora_A.abs().sum() > 0 and not m.lora_B.any() for m in M.lora_modules(model))
    assert torch.equal(model(X), tiny(X))


def test_default_targets_are_q_k_v_up_and_all_is_every_block_linear():
    def names(m):  # the names of the adapted linears
        return sorted({n.split(".")[-1] for n, mod in m.named_modules() if isinstance(mod, M.LoRALinear)})
    assert names(lora_model()) == ["k_proj", "q_proj", "up_proj", "v_proj"]
    assert names(lora_model(targets="all")) == sorted(M.BLOCK_LINEARS)
    with pytest.raises(ValueError, match="targets"):
        lora_model(targets=("o_proj",))  # LLaMA's name: not a LLaDA module


def test_merged_forward_equals_unmerged_and_unmerge_restores(tiny):
    model = lora_model()
    before, base = model(X), {k: v.clone() for k, v in model.state_dict().items()}
    assert not torch.allclose(before, tiny(X), atol=1e-3)  # the adapters matter
    M.merge_lora(model)
    assert torch.allclose(model(X), before, atol=1e-5)
    M.merge_lora(model, merged=False)
    for k, v in model.state_dict().items():
        assert torch.allclose(v, base[k], atol=1e-6), k
    assert torch.allclose(model(X), before, atol=1e-5)


def test_only_adapter_parameters_get_gradients():
    model = lora_model()
    model(X).logsumexp(-1).mean().backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == (".lora_" in name), name
    assert all(m.lora_A.grad.abs().sum() > 0 for m in M.lora_modules(model))


def test_lora_off_is_the_base_model(tiny):
    model = lora_model()
    with M.lora_off(model):
        assert torch.equal(model(X), tiny(X))
    assert not torch.allclose(model(X), tiny(X), atol=1e-3)  # adapters back on after the block


def test_adapters_are_fp32_on_a_bf16_base():
    model = M.apply_lora(M.build(TINY, "cpu", seed=0, dtype=torch.bfloat16), r=4, alpha=2.0, dropout=0.0)
    assert {m.weight.dtype for m in M.lora_modules(model)} == {torch.bfloat16}
    assert {m.lora_A.dtype for m in M.lora_modules(model)} == {torch.float32}
    assert model(X).dtype == torch.bfloat16


def test_apply_lora_refuses_a_meta_model_and_a_second_application():
    with torch.device("meta"):
        meta = M.Transformer(TINY)
    with pytest.raises(ValueError, match="materialised"):  # to_empty would leave the adapters garbage
        M.apply_lora(meta, r=4, alpha=2.0, dropout=0.0)
    with pytest.raises(ValueError, match="once"):
        M.apply_lora(lora_model(), r=4, alpha=2.0, dropout=0.0)


def test_adapter_init_is_seeded():
    a, b = lora_model(perturb=False), lora_model(perturb=False)
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v), k
    c = M.apply_lora(M.build(TINY, "cpu", seed=0), r=4, alpha=2.0, dropout=0.05, seed=1)
    assert not torch.equal(M.lora_modules(c)[0].lora_A, M.lora_modules(a)[0].lora_A)


def test_save_lora_load_lora_round_trip(tmp_path):
    model = lora_model()
    M.save_lora(model, str(tmp_path))
    back = M.load_lora(M.build(TINY, "cpu", seed=0), str(tmp_path)).eval()  # a plain model: adapters applied
    assert back.lora_config == model.lora_config
    for k, v in model.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    assert torch.equal(back(X), model(X))
    with pytest.raises(ValueError, match="differ"):
        M.load_lora(M.apply_lora(M.build(TINY, "cpu"), r=8, alpha=2.0, dropout=0.05), str(tmp_path))


def test_full_state_of_a_lora_model_loads_into_a_plain_model(tmp_path):
    model = lora_model()
    M.save(model, str(tmp_path / "merged"))  # adapters folded in: a plain checkpoint
    assert torch.allclose(M.load(str(tmp_path / "merged")).eval()(X), model(X), atol=1e-5)
    M.merge_lora(model)  # merged already: folded once, not twice
    M.export_hf(model, str(tmp_path / "hf"))
    assert torch.allclose(M.load(str(tmp_path / "hf")).eval()(X), model(X), atol=1e-5)
