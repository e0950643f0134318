"""
Tests for data/hf_tokenizer.py: HF byte-level BPE tokenizer.json -> tiktoken.Encoding.

    python -m pytest tests/test_hf_tokenizer.py -q

Synthetic files go to tmp_path. The real GPT-2 / dolma2 (cl100k) tokenizer.json files and LLaDA's
tokenizer_config.json are read from ../shared/data (see shared/data/PROVENANCE.md); tests that need
them skip when it is absent. No network.
"""
import json
import re
import shutil
from pathlib import Path

import pytest
import regex  # installed with tiktoken; used only for the reference pre-split below

from data.hf_tokenizer import (GPT2_PAT, LLADA_IDS, _unicode_to_byte, check_llada_specials, from_hf,
                               llada_special_tokens)
from data.tokenizer import BOS, EOT, HEADER_END, HEADER_START, MASK, chat, get_tokenizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BYTE_TO_CHAR = {b: c for c, b in _unicode_to_byte().items()}


def shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


# ----------------------------------------------------------------------------- a hand-made tokenizer

def u(text: str) -> str:
    """text in GPT-2's byte-to-unicode alphabet, as tokenizer.json stores tokens (' ' -> 'Ġ')."""
    return "".join(BYTE_TO_CHAR[b] for b in text.encode("utf-8"))


# merges in priority order; the merged token's id is 256 + index (single bytes have id == byte value)
MERGES = [("a", "b"), (" ", "a"), ("ab", "c"), ("b", "c"), ("\xc3", "\xa9")]  # the last one is 'é' = C3 A9
AB, SP_A, ABC, BC, E_ACUTE, EOS_ID, EOT_ID = range(256, 263)


def toy_json(merges_format="old", pre_tokenizer=None, **overrides) -> dict:
    vocab = {BYTE_TO_CHAR[b]: b for b in range(256)}
    merges = []
    for k, (a, b) in enumerate(MERGES):
        # "\xc3" here is one byte, not a character: map byte by byte
        ua, ub = ("".join(BYTE_TO_CHAR[ord(ch)] for ch in s) for s in (a, b))
        vocab[ua + ub] = 256 + k
        merges.append(f"{ua} {ub}" if merges_format == "old" else [ua, ub])
    added = [{"id": EOS_ID, "content": "<|endoftext|>", "special": True},
             {"id": EOT_ID, "content": "<|eot_id|>", "special": True}]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    tok = {"version": "1.0", "added_tokens": added, "normalizer": None,
           "pre_tokenizer": pre_tokenizer or byte_level,
           "post_processor": None, "decoder": {"type": "ByteLevel"},
           "model": {"type": "BPE", "vocab": vocab, "merges": merges}}
    tok.update(overrides)
    return tok


def write_dir(tmp_path: Path, tok: dict, config: dict | None = None) -> str:
    (tmp_path / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
    if config is not None:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return str(tmp_path)


@pytest.mark.parametrize("merges_format", ["old", "new"])
def test_toy_bpe_follows_merge_priority(tmp_path, merges_format):
    enc = from_hf(write_dir(tmp_path, toy_json(merges_format)))
    # "abcd": a+b (priority 0) before b+c (3), then ab+c -> [abc, d]
    assert enc.encode("abcd") == [ABC, ord("d")]
    # " bcd": 'a' is absent, so b+c -> [space, bc, d]; " a" is one merge
    assert enc.encode(" bcd") == [ord(" "), BC, ord("d")]
    assert enc.encode(" a") == [SP_A]
    # " abc": a+b first, so " a" never forms -> [space, abc]
    assert enc.encode(" abc") == [ord(" "), ABC]
    # GPT-2 pieces: "abcd", " bcd", "\n"
    assert enc.encode("abcd bcd\n") == [ABC, ord("d"), ord(" "), BC, ord("d"), ord("\n")]
    # a two-byte character merged from its shifted-alphabet chars
    assert enc.encode("é") == [E_ACUTE] and enc.decode([E_ACUTE]) == "é"
    assert enc.decode_single_token_bytes(ABC) == b"abc"


def test_toy_special_tokens_encode_to_their_ids_and_decode_back(tmp_path):
    enc = from_hf(write_dir(tmp_path, toy_json()))
    ids = enc.encode("abc<|endoftext|><|eot_id|>", allowed_special="all")
    assert ids == [ABC, EOS_ID, EOT_ID]
    assert enc.decode(ids) == "abc<|endoftext|><|eot_id|>"
    # without allowed_special the strings are ordinary text (house rule: user text never becomes specials)
    assert EOS_ID not in enc.encode_ordinary("<|endoftext|>")


def test_split_regex_becomes_pat_str(tmp_path):
    pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\S+|\s+"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]}
    enc = from_hf(write_dir(tmp_path, toy_json(pre_tokenizer=pre)))
    # pieces "abcd", " ", "bcd": the space no longer starts the next word as under the GPT-2 regex
    assert enc.encode("abcd bcd") == [ABC, ord("d"), ord(" "), BC, ord("d")]


def test_get_tokenizer_on_a_folder_uses_the_converter_and_needs_llada_specials(tmp_path):
    with pytest.raises(ValueError, match=re.escape("tokenizer.json (+ tokenizer_config.json): special")):
        get_tokenizer(write_dir(tmp_path, toy_json()))  # GPT-2's specials only: no mask token to sample with
    llada = [{"id": i, "content": name, "special": True} for name, i in LLADA_IDS.items()]
    assert get_tokenizer(write_dir(tmp_path, toy_json(added_tokens=llada))).encode("abcd") == [ABC, ord("d")]


def test_vocab_ids_out_of_merge_order_raise(tmp_path):
    tok = toy_json()
    vocab = tok["model"]["vocab"]
    vocab[u("ab")], vocab[u(" a")] = SP_A, AB  # "ab" is merged first but now has the larger id
    with pytest.raises(ValueError, match="merge order"):
        from_hf(write_dir(tmp_path, tok))


def test_added_token_reusing_a_bpe_id_raises(tmp_path):
    tok = toy_json()
    tok["added_tokens"][1]["id"] = ABC
    with pytest.raises(ValueError, match="reus"):
        from_hf(write_dir(tmp_path, tok))


def test_llada_folder_with_a_wrong_mask_id_raises_naming_it(tmp_path):
    tok = toy_json()
    tok["added_tokens"].append({"id": 300, "content": MASK, "special": True})
    with pytest.raises(ValueError, match=re.escape(MASK)):
        from_hf(write_dir(tmp_path, tok))


@pytest.mark.parametrize("change, piece", [
    ({"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"}}, "Metaspace"),
    ({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}}, "WordPiece"),
    ({"normalizer": {"type": "NFC"}}, "NFC"),
    ({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "use_regex": True}},
     "add_prefix_space"),
    ({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits"}, {"type": "ByteLevel"}]}},
     "Digits"),
    ({"decoder": {"type": "Metaspace"}}, "decoder"),
])
def test_unsupported_variants_raise_naming_the_piece(tmp_path, change, piece):
    path = write_dir(tmp_path, toy_json(**change))
    with pytest.raises(ValueError, match=piece) as e:
        from_hf(path)
    assert "tokenizer.json" in str(e.value)


def test_missing_file_and_malformed_json_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        from_hf(str(tmp_path / "nowhere"))
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "tokenizer.json"))):
        from_hf(str(tmp_path))


# ----------------------------------------------------------------------------- LLaDA's real config

def test_real_llada_config_has_the_documented_special_ids():
    specials = llada_special_tokens(shared("llada_tokenizer/tokenizer_config.json"))
    assert len(specials) == 269
    check_llada_specials(specials)  # raises on any mismatch
    assert specials[MASK] == 126336 and specials[BOS] == 126080 and specials[EOT] == 126348


def test_tampered_llada_config_raises_naming_the_token(tmp_path):
    cfg = json.loads(shared("llada_tokenizer/tokenizer_config.json").read_text(encoding="utf-8"))
    entry = cfg["added_tokens_decoder"].pop("126347")
    assert entry["content"] == HEADER_END
    cfg["added_tokens_decoder"]["126349"] = entry  # one id changed
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(HEADER_END)):
        check_llada_specials(llada_special_tokens(tmp_path / "tokenizer_config.json"))


def test_toy_vocab_with_real_llada_config_builds_the_chat_prompt(tmp_path):
    # LLaDA's tokenizer.json is not available: pair the toy BPE with the real config's added tokens
    shutil.copy(shared("llada_tokenizer/tokenizer_config.json"), tmp_path / "tokenizer_config.json")
    tok = toy_json()
    tok["added_tokens"] = []
    enc = from_hf(write_dir(tmp_path, tok))
    ids = chat(enc, " abc ")
    assert ids[:2] == [126080, 126346] and ids.count(126080) == 1
    # the real template: two newlines
    assert ids[ids.index(126348) - 1] == ABC and ids[-3:] == [126347, ord("\n"), ord("\n")]
    assert enc.encode_single_token(MASK) == 126336 and enc.encode_single_token(HEADER_START) == 126346


# ----------------------------------------------------------------------------- real GPT-2 and dolma2 files

def hf_bpe(piece: bytes, priority: dict) -> list[bytes]:
    """Reference HF BPE: repeatedly merge the adjacent pair listed first in `merges`."""
    parts = [bytes([b]) for b in piece]
    while len(parts) > 1:
        k = min(range(len(parts) - 1), key=lambda k: priority.get((parts[k], parts[k + 1]), float("inf")))
        if (parts[k], parts[k + 1]) not in priority:
            break
        parts[k:k + 2] = [parts[k] + parts[k + 1]]
    return parts


@pytest.fixture(scope="module", params=["gpt2", "dolma2"])
def real(request):
    """(encoding, merge priority over bytes, pat_str) for one real tokenizer.json, converted once."""
    path = shared(f"tokenizers/{request.param}/tokenizer.json")
    tok = json.loads(path.read_text(encoding="utf-8"))
    u2b = _unicode_to_byte()
    to_b = lambda s: bytes(u2b[c] for c in s)
    pairs = (m.split(" ") for m in tok["model"]["merges"])
    priority = {(to_b(a), to_b(b)): k for k, (a, b) in enumerate(pairs)}
    pre = tok["pre_tokenizer"]
    pat = GPT2_PAT if pre["type"] == "ByteLevel" else pre["pretokenizers"][0]["pattern"]["Regex"]
    return request.param, from_hf(str(path.parent)), priority, pat


KNOWN = {  # OpenAI's published examples and well-known ids
    "gpt2": {"Hello world": [15496, 995], " the": [262],
             "tiktoken is great!": [83, 1134, 30001, 318, 1049, 0]},
    "dolma2": {"hello": [15339], "Hello world": [9906, 1917],
               "tiktoken is great!": [83, 1609, 5963, 374, 2294, 0],
               "antidisestablishmentarianism": [519, 85342, 34500, 479, 8997, 2191]},
}
SPECIAL = {"gpt2": {"<|endoftext|>": 50256},
           "dolma2": {"<|endoftext|>": 100257, "<|extra_id_0|>": 100256, "<|pad|>": 100277}}
UNICODE = "Grüße, 世界! Ελληνικά — naïve café 🙂\n\t  x² ≤ ∑ 1/n  ''s  it's"


def test_real_tokenizer_gives_known_ids_and_specials(real):
    name, enc, _, _ = real
    for text, ids in KNOWN[name].items():
        assert enc.encode(text) == ids, text
    for text, i in SPECIAL[name].items():
        assert enc.encode(text, allowed_special="all") == [i]
    assert enc.decode(enc.encode(UNICODE)) == UNICODE


def test_real_tokenizer_matches_reference_hf_bpe_on_text(real):
    name, enc, priority, pat = real
    lines = shared("gsm8k_test.jsonl").open().readlines()[:60]
    text = "\n".join(json.loads(line)["question"] for line in lines)
    text += "\n" + UNICODE
    want = [enc.encode_single_token(t) for piece in regex.findall(pat, text)
            for t in hf_bpe(piece.encode("utf-8"), priority)]
    assert enc.encode(text) == want


def test_every_real_token_is_the_bpe_of_its_own_bytes(real):
    # tiktoken returns a piece that is itself a token without merging (HF's ignore_merges=true); these
    # files have ignore_merges unset, so this must hold for the two to agree on every input
    name, enc, priority, _ = real
    specials = enc._special_tokens.values()
    tokens = [enc.decode_single_token_bytes(i) for i in range(enc.n_vocab) if i not in specials]
    assert [t for t in tokens if len(t) > 1 and hf_bpe(t, priority) != [t]] == []
