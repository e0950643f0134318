"""Hugging Face LLaDA folders: sharded loading, strict keys, refused architectures, export round trip.
Run: python -m pytest -q tests/test_hf_checkpoint.py"""
import json
import os

import pytest
import torch
from safetensors.torch import save_file

import model as M
from conftest import TINY


def llada_config(**over) -> dict:
    # GSAI-ML/LLaDA-8B-Instruct's config.json fields (IGPO.md B.1.1) at TINY's dimensions; vocab_size below
    # embedding_size as a padded vocabulary has it: the embedding rows are embedding_size
    d = dict(activation_type="silu", alibi=False, alibi_bias_max=8.0, architectures=["LLaDAModelLM"],
             attention_dropout=0.0, attention_layer_norm=False, attention_layer_norm_with_affine=True,
             bias_for_layer_norm=False, block_group_size=1, block_type="llama", d_model=32,
             embedding_dropout=0.0, embedding_size=264, eos_token_id=256, flash_attention=False,
             include_bias=False, include_qkv_bias=False, init_device="meta", init_fn="mitchell",
             init_std=0.02, input_emb_norm=False, layer_norm_type="rms", layer_norm_with_affine=True,
             mask_token_id=261, max_sequence_length=128, mlp_hidden_size=64, mlp_ratio=4, model_type="llada",
             multi_query_attention=None, n_heads=4, n_kv_heads=4, n_layers=2, pad_token_id=256,
             precision="amp_bf16", residual_dropout=0.0, rms_norm_eps=1e-5, rope=True,
             rope_full_precision=True, rope_theta=10000.0, scale_logits=False, use_cache=False,
             vocab_size=260, weight_tying=False)
    return {**d, **over}


def write_llada_folder(path, sd: dict, config: dict):
    """The HF layout: config.json, two bf16 shards model-0000i-of-00002.safetensors, and the index."""
    os.makedirs(path, exist_ok=True)
    keys = sorted(sd)
    names = {}
    for i, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2:])):
        name = f"model-{i + 1:05d}-of-00002.safetensors"
        shard = {k: sd[k].to(torch.bfloat16).contiguous() for k in part}
        save_file(shard, os.path.join(path, name), {"format": "pt"})
        names.update(dict.fromkeys(part, name))
    total = sum(v.numel() * 2 for v in sd.values())
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": names}, f)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)


@pytest.fixture
def reference():
    """A TINY model whose weights are exactly representable in bf16, as LLaDA's checkpoint ships them."""
    ref = M.build(TINY, "cpu", seed=1).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(p.bfloat16().float())
    return ref


@pytest.fixture
def llada_dir(tmp_path, reference):
    path = tmp_path / "LLaDA-tiny"
    write_llada_folder(path, reference.state_dict(), llada_config())
    return str(path)


def assert_loads_as(folder, reference):
    """M.load(folder) has the reference's shape (tokenizer: the folder), exactly its weights and its
    logits."""
    model = M.load(folder).eval()
    assert model.config == M.ModelConfig(**{**vars(TINY), "tokenizer": os.path.abspath(folder)})
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    x = torch.randint(0, 256, (2, 12))
    assert torch.equal(model(x), reference(x))


def test_sharded_hf_folder_loads_and_computes_what_our_model_does(llada_dir, reference):
    assert_loads_as(llada_dir, reference)


def test_bf16_load_builds_bf16_parameters_close_to_fp32(llada_dir, reference):
    model = M.load(llada_dir, dtype=torch.bfloat16).eval()
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    x = torch.randint(0, 256, (1, 12))
    assert torch.allclose(model(x).float(), reference(x), atol=0.1)


def test_export_then_load_round_trip_is_exact(tmp_path, reference):
    out = str(tmp_path / "export")
    M.export_hf(reference, out, shard_size_gb=30e3 / 1e9)  # ~30 KB shards: several files
    index = json.load(open(os.path.join(out, "model.safetensors.index.json")))
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert index["metadata"]["total_size"] == sum(v.nbytes for v in reference.state_dict().values())
    cfg = json.load(open(os.path.join(out, "config.json")))
    fields = (cfg["model_type"], cfg["architectures"], cfg["mask_token_id"], cfg["n_layers"])
    assert fields == ("llada", ["LLaDAModelLM"], 261, 2)
    assert not [f for f in os.listdir(out) if ".tmp" in f]
    assert_loads_as(out, reference)


def test_hf_missing_or_misshaped_key_is_named(tmp_path, reference):
    sd = dict(reference.state_dict())
    del sd["model.transformer.blocks.1.ff_norm.weight"]
    sd["model.transformer.blocks.0.k_proj.weight"] = torch.zeros(32, 16)
    write_llada_folder(tmp_path, sd, llada_config())
    with pytest.raises(ValueError) as e:
        M.load(str(tmp_path))
    assert "missing keys: ['model.transformer.blocks.1.ff_norm.weight']" in str(e.value)
    assert "blocks.0.k_proj.weight: checkpoint (32, 16) vs model (32, 32)" in str(e.value)


@pytest.mark.parametrize("field, value", [
    ("block_type", "sequential"), ("weight_tying", True), ("n_kv_heads", 2), ("activation_type", "swiglu"),
    ("include_bias", True), ("alibi", True), ("layer_norm_type", "default"), ("multi_query_attention", True)])
def test_unsupported_hf_architecture_is_refused_naming_the_field(field, value):
    kw = {field: value, "n_kv_heads": None} if field == "multi_query_attention" else {field: value}
    with pytest.raises(ValueError, match=field if field != "multi_query_attention" else "n_kv_heads=1"):
        M.config_from_hf(llada_config(**kw))


def test_hf_config_without_a_shape_field_is_refused_naming_it():
    d = llada_config()
    del d["rope_theta"]
    with pytest.raises(ValueError, match="rope_theta missing"):
        M.config_from_hf(d)
