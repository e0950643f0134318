"""
Hugging Face byte-level BPE `tokenizer.json` -> tiktoken.Encoding, without transformers/tokenizers.

    enc = from_hf("path/to/LLaDA-8B-Instruct")   # folder with tokenizer.json (+ tokenizer_config.json)

Supported: model BPE over GPT-2's byte-to-unicode alphabet; pre_tokenizer ByteLevel (GPT-2 regex) or
Sequence[Split(Regex), ByteLevel(use_regex=false)] (cl100k / Llama-3 / dolma2); no normalizer;
ByteLevel decoder. Anything else (or a file of another shape) raises ValueError naming the piece and the
file, because a silently different split would give the model token ids it never saw.
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
            obj = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: malformed JSON ({e})") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object, got a {type(obj).__name__}")
    return obj


def _part(obj: dict, key: str, kind: type, path: str):
    """obj[key] (kind() when absent or null), or a ValueError naming the file and the field when it is not a
    `kind`: a file of another shape fails here, not as an AttributeError deep in the conversion."""
    v = obj.get(key)
    if v is not None and not isinstance(v, kind):
        raise ValueError(f"{path}: field {key!r} is {json.dumps(v)[:40]}, expected a JSON "
                         f"{'object' if kind is dict else 'array'}")
    return kind() if v is None else v


def _pat_str(pre: dict | None, where: str) -> str:
    """tiktoken's pat_str for a supported HF pre_tokenizer; ValueError for anything else."""
    def byte_level(step, use_regex):
        if step.get("add_prefix_space", False):  # would turn "Hi" into " Hi" before splitting
            raise ValueError(f"{where}: ByteLevel add_prefix_space=true is not supported")
        if step.get("use_regex", True) != use_regex:
            raise ValueError(f"{where}: ByteLevel use_regex={step.get('use_regex', True)} "
                             "is not supported here")

    kind = (pre or {}).get("type")
    if kind == "ByteLevel":
        byte_level(pre, use_regex=True)
        return GPT2_PAT
    steps = _part(pre, "pretokenizers", list, where) if kind == "Sequence" else []
    if not all(isinstance(s, dict) for s in steps):
        raise ValueError(f"{where}: field 'pretokenizers' holds a step that is not an object")
    if [s.get("type") for s in steps] == ["Split", "ByteLevel"]:
        split, byte = steps
        byte_level(byte, use_regex=False)
        # tiktoken keeps the regex matches as pieces. Split gives the same pieces when it isolates
        # matches (Isolated, invert=false) or drops non-matches (Removed, invert=true); for a regex that
        # matches every character, as cl100k's and Llama-3's do, the two are identical.
        mode = (split.get("behavior"), split.get("invert", False))
        if "Regex" not in split.get("pattern", {}) or mode not in [("Isolated", False), ("Removed", True)]:
            raise ValueError(f"{where}: Split {split.get('pattern')} {mode} is not supported")
        return split["pattern"]["Regex"]
    pieces = [s.get("type") for s in steps] if steps else kind
    raise ValueError(f"{where}: pre_tokenizer {pieces} is not supported (ByteLevel or [Split, ByteLevel])")


def _special_tokens(tok: dict, path: str, config_path: str) -> dict[str, int]:
    """added_tokens of tokenizer.json (path) plus added_tokens_decoder of tokenizer_config.json (if any)."""
    added = _part(tok, "added_tokens", list, path)
    if bad := [a for a in added if not (isinstance(a, dict) and isinstance(a.get("content"), str)
                                        and type(a.get("id")) is int)]:
        raise ValueError(f"{path}: field 'added_tokens' holds {bad[0]!r}, expected {{content, id}}")
    specials = {a["content"]: a["id"] for a in added}
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
    decoder = _part(_read_json(config_path), "added_tokens_decoder", dict, config_path)
    for k, v in decoder.items():  # a bad entry names the file (not int()'s bare "invalid literal")
        if not (k.isdigit() and isinstance(v, dict) and isinstance(v.get("content"), str)):
            raise ValueError(f"{config_path}: added_tokens_decoder entry {k!r}: {v!r} is not "
                             "id: {content: token}")
    return {v["content"]: int(k) for k, v in decoder.items()}


def check_llada_specials(special_tokens: dict, where: str = "LLaDA") -> None:
    """Raise ValueError naming `where` (the tokenizer's files) and the first house special token whose id
    differs from LLaDA's, or that is missing."""
    for name, want in LLADA_IDS.items():
        if special_tokens.get(name) != want:
            raise ValueError(f"{where}: special token {name}: expected id {want} (LLaDA's), "
                             f"found {special_tokens.get(name)}")


def from_hf(dir: str) -> tiktoken.Encoding:
    path, config_path = os.path.join(dir, "tokenizer.json"), os.path.join(dir, "tokenizer_config.json")
    tok = _read_json(path)
    model = _part(tok, "model", dict, path)
    # very old files omit model.type; HF then infers BPE from the presence of merges
    if model.get("type", "BPE" if "merges" in model else None) != "BPE":
        raise ValueError(f"{path}: model type {model.get('type')} is not supported (only byte-level BPE)")
    if any(model.get(k) for k in ("byte_fallback", "continuing_subword_prefix", "end_of_word_suffix")):
        raise ValueError(f"{path}: BPE byte_fallback / subword prefix or suffix is not supported")
    # NFC, Lowercase, ... change the text before it is split
    if normalizer := _part(tok, "normalizer", dict, path):
        raise ValueError(f"{path}: normalizer {normalizer.get('type')} is not supported")
    decoder = _part(tok, "decoder", dict, path).get("type")
    if decoder != "ByteLevel":
        raise ValueError(f"{path}: decoder {decoder} is not supported")
    pat_str = _pat_str(_part(tok, "pre_tokenizer", dict, path), path)
    specials, str_vocab = _special_tokens(tok, path, config_path), _part(model, "vocab", dict, path)
    if bad := [s for s, i in str_vocab.items() if type(i) is not int]:
        raise ValueError(f"{path}: vocab token {bad[0]!r} has id {str_vocab[bad[0]]!r}, expected an int")
    if MASK in specials:  # a LLaDA folder
        check_llada_specials(specials, f"{path} (+ tokenizer_config.json)")
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
    vocab = {to_bytes(s): i for s, i in str_vocab.items() if specials.get(s) != i}
    missing = [b for b in range(256) if bytes([b]) not in vocab]
    if missing:
        raise ValueError(f"{path}: vocab lacks {len(missing)} single bytes, e.g. {bytes([missing[0]])!r}")
    # merges: old files write "a b" (a space never occurs inside a token: it is 'Ġ'), new ones ["a", "b"].
    # The alphabet maps char by char, so the merged token's string is simply a + b.
    last = -1
    for k, m in enumerate(_part(model, "merges", list, path)):
        pair = m.split(" ") if isinstance(m, str) else m
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise ValueError(f"{path}: merge {k} {m!r} is neither 'a b' nor [a, b]")
        a, b = pair
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
