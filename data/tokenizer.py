"""
Tokenizers as tiktoken Encodings, built locally (never downloaded), and the chat template.

    get_tokenizer("byte")     256 byte tokens + the special tokens below (tiny preset, tests)
    get_tokenizer(DIR)        a Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json),
                              e.g. LLaDA-8B-Instruct's, converted by data/hf_tokenizer.py

Special tokens are looked up by name, never by id: LLaDA's names are the house names. They are defined
beside LLaDA's documented ids in data/hf_tokenizer.py; the rest of the code imports them from this file.
"""
import os

import tiktoken

from data.hf_tokenizer import BOS, EOS, EOT, HEADER_END, HEADER_START, MASK, check_llada_specials, from_hf

SPECIALS = [EOS, BOS, HEADER_START, HEADER_END, EOT, MASK]


def byte_tokenizer() -> tiktoken.Encoding:
    # one token per byte, no merges; specials follow the 256 byte ids
    ranks = {bytes([i]): i for i in range(256)}
    specials = {name: 256 + i for i, name in enumerate(SPECIALS)}
    return tiktoken.Encoding(name="byte", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens=specials)


def get_tokenizer(spec: str = "byte") -> tiktoken.Encoding:
    if spec == "byte":
        return byte_tokenizer()
    if os.path.isdir(spec):  # a real checkpoint's tokenizer, converted from the HF format
        enc = from_hf(spec)
        # the sampler, the chat template and the padding need LLaDA's special tokens, at LLaDA's ids
        specials = {s: enc.encode_single_token(s) for s in enc.special_tokens_set}
        check_llada_specials(specials, f"{os.path.join(spec, 'tokenizer.json')} (+ tokenizer_config.json)")
        return enc
    raise ValueError(f"tokenizer {spec!r}: expected 'byte' or a folder with tokenizer.json")


def special_id(enc: tiktoken.Encoding, name: str) -> int:
    return enc.encode_single_token(name)


def chat(enc: tiktoken.Encoding, content: str) -> list[int]:
    """One user turn plus the assistant header, with exactly one BOS, as the chat_template of LLaDA's
    tokenizer_config.json writes it (two newlines after each header; IGPO.md B.1.5 shows one):
    <|startoftext|><|start_header_id|>user<|end_header_id|>\\n\\n{content}<|eot_id|>
    <|start_header_id|>assistant<|end_header_id|>\\n\\n
    The user's text is encoded as plain text: special-token strings inside it stay text.
    The byte tokenizer (tiny preset) has its own compact template, <|startoftext|>{content}<|eot_id|>: role
    headers spelled out in bytes add 20 tokens to every tiny sequence and slow learning badly (a tiny model
    copying a 3-digit prompt: 100% after 100 SFT steps without them, about 50% after 250 with them)."""
    sp = lambda name: [special_id(enc, name)]
    if enc.name == "byte":
        return sp(BOS) + enc.encode_ordinary(content.strip()) + sp(EOT)
    newlines = enc.encode_ordinary("\n\n")
    header = lambda role: sp(HEADER_START) + enc.encode_ordinary(role) + sp(HEADER_END) + newlines
    return sp(BOS) + header("user") + enc.encode_ordinary(content.strip()) + sp(EOT) + header("assistant")


def decode(enc: tiktoken.Encoding, ids) -> str:
    """Text of a completion: special tokens (EOS padding, masks) dropped, like skip_special_tokens."""
    drop = {enc.encode_single_token(s) for s in enc.special_tokens_set}
    return enc.decode([i for i in map(int, ids) if i not in drop and i < enc.n_vocab])
