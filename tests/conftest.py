"""Shared fixtures: the byte tokenizer, a seeded tiny model, the toy task. Run: python -m pytest -q tests"""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
torch.set_num_threads(1)  # tiny models: one thread is fastest, and stays fast on a busy machine

import model as M  # noqa: E402
from data.tokenizer import EOS, MASK, get_tokenizer, special_id  # noqa: E402

TINY = M.ModelConfig(vocab_size=264, n_layer=2, n_head=4, n_embd=32, mlp_hidden=64, max_seq_len=128)


@pytest.fixture
def enc():
    return get_tokenizer("byte")


@pytest.fixture
def ids(enc):
    return {"mask": special_id(enc, MASK), "eos": special_id(enc, EOS)}


@pytest.fixture
def tiny():
    return M.build(TINY, "cpu", seed=0).eval()
