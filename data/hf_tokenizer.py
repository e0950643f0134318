"""
Hugging Face byte-level BPE `tokenizer.json` -> tiktoken.Encoding, without transformers/tokenizers.

    enc = from_hf("path/to/LLaDA-8B-Instruct")   # folder with tokenizer.json (+ tokenizer_config.json)

Supported: model BPE over GPT-2's byte-to-unicode alphabet; pre_tokenizer ByteLevel (GPT-2 regex) or
Sequence[Split(Regex), ByteLevel(use_regex=false)] (cl100k / Llama-3 / dolma2); no normalizer;
ByteLevel decoder. Anything else raises NotImplementedError naming the piece and the file, because a
silently different split would give the model token ids it never saw.
tiktoken needs rank == token id, and it merges the adjacent pair whose *result* has the lowest rank,
while HF merges the pair listed first in `merges`. The two agree when merge results' vocab ids grow
with merge order (true for GPT-2 and cl100k, and for anything trained by HF's BpeTrainer); we check
that and refuse otherwise.
Differences kept on purpose: no BOS is added (post_processor is ignored: IGPO.md B.1.5 wants exactly
one, added by data.tokenizer.chat), and added tokens are found in text only with `allowed_special`
(HF always splits them out); their lstrip/rstrip/normalized flags are ignored.
"""
import json
import os

import tiktoken

# HF's ByteLevel(use_regex=true) pre-split; the same pieces as tiktoken's "gpt2" pat_str
GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# LLaDA's special tokens, whose names are the house names: data/tokenizer.py takes them from here (this
# converter imports nothing from it, so the two files never import each other)
MASK, EOS, BOS = "<|mdm_mask|>", "<|endoftext|>", "<|startoftext|>"
HEADER_START, HEADER_END, EOT = "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"
# documented LLaDA-8B ids (IGPO.md B.1.1-B.1.2); a checkpoint that disagrees is not the model we studied
LLADA_IDS = {MASK: 126336, EOS: 126081, BOS: 126080, HEADER_START: 126346, HEADER_END: 126347, EOT: 126348}


def _unicode_to_byte() -> dict[str, int]:
    # GPT-2's alphabet: the 188 printable latin-1 bytes stand for themselves, the other 68 (controls,
    # space, ...) are shifted to chr(256 + k) in byte order, so 'Ġ' is the space byte
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in printable]
    return {**{chr(b): b for b in printable}, **{chr(256 + k): b for k, b in enumerate(shifted)}}


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON ({e})") from e


def _pat_str(pre: dict | None, where: str) -> str:
    """tiktoken's pat_str for a supported HF pre_tokenizer; NotImplementedError for anything else."""
    def byte_level(step, use_regex):
        if step.get("add_prefix_space", False):  # would turn "Hi" into " Hi" before splitting
            raise NotImplementedError(f"{where}: ByteLevel add_prefix_space=true is not supported")
        if step.get("use_regex", True) != use_regex:
            raise NotImplementedError(f"{where}: ByteLevel use_regex={step.get('use_regex', True)} "
                                      "is not supported here")

    kind = (pre or {}).get("type")
    if kind == "ByteLevel":
        byte_level(pre, use_regex=True)
        return GPT2_PAT
    steps = pre.get("pretokenizers", []) if kind == "Sequence" else []
    if [s.get("type") for s in steps] == ["Split", "ByteLevel"]:
        split, byte = steps
        byte_level(byte, use_regex=False)
        # tiktoken keeps the regex matches as pieces. Split gives the same pieces when it isolates
        # matches (Isolated, invert=false) or drops non-matches (Removed, invert=true); for a regex that
        # matches every character, as cl100k's and Llama-3's do, the two are identical.
        mode = (split.get("behavior"), split.get("invert", False))
        if "Regex" not in split.get("pattern", {}) or mode not in [("Isolated", False), ("Removed", True)]:
            raise NotImplementedError(f"{where}: Split {split.get('pattern')} {mode} is not supported")
        return split["pattern"]["Regex"]
    pieces = [s.get("type") for s in steps] if steps else kind
    raise NotImplementedError(f"{where}: pre_tokenizer {pieces} is not supported "
                              "(ByteLevel or [Split, ByteLevel])")


def _special_tokens(tok: dict, config_path: str) -> dict[str, int]:
    """added_tokens of tokenizer.json plus added_tokens_decoder of tokenizer_config.json (if any)."""
    specials = {a["content"]: a["id"] for a in tok.get("added_tokens", [])}
    if os.path.isfile(config_path):
        for name, i in llada_special_tokens(config_path).items():
            if specials.setdefault(name, i) != i:
                raise ValueError(f"{config_path}: {name} has id {i}, "
                                 f"but tokenizer.json says {specials[name]}")
    if len(set(specials.values())) != len(specials):
        raise ValueError(f"{config_path} / tokenizer.json: two added tokens share one id")
    return specials


def llada_special_tokens(config_path: str) -> dict[str, int]:
    """{token: id} from a tokenizer_config.json's added_tokens_decoder (keys there are id strings)."""
    cfg = _read_json(config_path)
    return {v["content"]: int(k) for k, v in cfg.get("added_tokens_decoder", {}).items()}


def check_llada_specials(special_tokens: dict) -> None:
    """Raise ValueError naming the first house special token whose id differs from LLaDA's."""
    for name, want in LLADA_IDS.items():
        if special_tokens.get(name) != want:
            raise ValueError(f"LLaDA special token {name}: expected id {want}, "
                             f"found {special_tokens.get(name)}")


def from_hf(dir: str) -> tiktoken.Encoding:
    path, config_path = os.path.join(dir, "tokenizer.json"), os.path.join(dir, "tokenizer_config.json")
    tok = _read_json(path)
    model = tok.get("model", {})
    # very old files omit model.type; HF then infers BPE from the presence of merges
    if model.get("type", "BPE" if "merges" in model else None) != "BPE":
        raise NotImplementedError(f"{path}: model type {model.get('type')} is not supported "
                                  "(only byte-level BPE)")
    if any(model.get(k) for k in ("byte_fallback", "continuing_subword_prefix", "end_of_word_suffix")):
        raise NotImplementedError(f"{path}: BPE byte_fallback / subword prefix or suffix is not supported")
    if tok.get("normalizer") is not None:  # NFC, Lowercase, ... change the text before it is split
        raise NotImplementedError(f"{path}: normalizer {tok['normalizer'].get('type')} is not supported")
    decoder = (tok.get("decoder") or {}).get("type")
    if decoder != "ByteLevel":
        raise NotImplementedError(f"{path}: decoder {decoder} is not supported")
    pat_str, specials = _pat_str(tok.get("pre_tokenizer"), path), _special_tokens(tok, config_path)
    if MASK in specials:  # a LLaDA folder
        check_llada_specials(specials)
    u2b = _unicode_to_byte()
    def to_bytes(s: str) -> bytes:
        try:
            return bytes(u2b[c] for c in s)
        except KeyError as e:
            raise ValueError(f"{path}: token {s!r} is not in GPT-2's byte-level alphabet") from e

    # dolma2 also lists its added tokens in the vocab, at their own ids: those are not BPE tokens.
    # Tokens no merge makes are kept (the model may emit any id), and tiktoken finds a whole piece that is
    # a token before merging (HF's ignore_merges); both match HF when every token is the BPE of its own
    # bytes, as tests/test_hf_tokenizer.py checks for GPT-2 and cl100k.
    vocab = {to_bytes(s): i for s, i in model.get("vocab", {}).items() if specials.get(s) != i}
    missing = [b for b in range(256) if bytes([b]) not in vocab]
    if missing:
        raise ValueError(f"{path}: vocab lacks {len(missing)} single bytes, e.g. {bytes([missing[0]])!r}")
    # merges: old files write "a b" (a space never occurs inside a token: it is 'Ġ'), new ones ["a", "b"].
    # The alphabet maps char by char, so the merged token's string is simply a + b.
    str_vocab, last = model.get("vocab", {}), -1
    for k, m in enumerate(model.get("merges", [])):
        a, b = m.split(" ") if isinstance(m, str) else m
        i = str_vocab.get(a + b)
        if i is None or a not in str_vocab or b not in str_vocab:
            raise ValueError(f"{path}: merge {k} {m!r} uses or makes a token missing from the vocab")
        # non-decreasing: equal ids are other splits of one token (files converted from tiktoken list several)
        if i < last:
            raise ValueError(f"{path}: merge {k} {m!r} makes id {i} after id {last}; vocab ids do not follow "
                             "merge order, so tiktoken (rank == id) cannot reproduce this BPE")
        last = i
    ids = set(vocab.values())
    clash = {n: i for n, i in specials.items() if i in ids}
    if len(ids) != len(vocab) or clash:
        raise ValueError(f"{path}: ids must be unique; added tokens reusing BPE ids: {clash}")
    return tiktoken.Encoding(name=os.path.basename(os.path.normpath(dir)), pat_str=pat_str,
                             mergeable_ranks=vocab, special_tokens=specials)
