"""Bad input: every bad setting, file or line is a one-line error naming it, raised before any training or
writing; --help on every script. Run: python -m pytest -q tests/test_errors.py"""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import bench
import eval as E
import model as M
import sample as S
import sft
import train_igpo as T
from conftest import REPO, TINY, child_env, snapshot
from data import rewrite
from data.hf_tokenizer import LLADA_IDS, MASK
from test_hf_tokenizer import toy_json

MAINS = {"sft": sft.main, "train_igpo": T.main, "eval": E.main, "sample": S.main, "bench": bench.main}
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with CUDA runs --device=cuda")
BAD_FLAGS = [  # (script, flags, what the one-line message says)
    ("sft", ["--batch_size=-4"], "--batch_size=-4: expected >= 1"),
    ("sft", ["--batch_size=0"], "--batch_size=0: expected >= 1"),
    ("sft", ["--dtype=foo"], "--dtype=foo: expected one of 'float32', 'bfloat16'"),
    ("sft", ["--dtype=int8"], "--dtype=int8: expected one of"),
    ("sft", ["--lora_r=-4"], "--lora_r=-4: expected >= 0"),
    ("sft", ["--lora_targets=q_proj,wq"], "--lora_targets=q_proj,wq: expected 'all' or"),
    ("sft", ["--gen_len=7", "--block_len=8"], "gen_len=7 is not divisible by block_len=8"),
    ("sft", ["--steps=5"], "steps=5 is not divisible by the number of blocks"),
    ("sft", ["--block_len=0"], "block_len=0, steps=16: each must be >= 1"),
    ("sft", ["--steps=0"], "steps=0: each must be >= 1"),
    ("sft", ["--device=tpu7"], "--device=tpu7: expected '' (cuda if available"),
    pytest.param("sft", ["--device=cuda"], "--device=cuda: expected", marks=NO_CUDA),
    ("sft", ["--task=nope"], "--task=nope: expected one of 'toy'"),
    ("sft", ["--nope=1"], "unknown flag --nope; valid flags: --preset"),
    ("sft", ["--max_steps=x"], "--max_steps=x: expected a int"),
    ("sft", ["--preset=huge"], "unknown preset 'huge'"),
    ("sft", ["--out_dir="], "--out_dir=: expected a folder, not a file or ''"),
    ("sft", ["--resume=True", "--overwrite=True"], "--overwrite=True: expected False with --resume=True"),
    ("train_igpo", ["--out_dir="], "--out_dir=: expected a folder, not a file or ''"),
    ("train_igpo", ["--group_size=1"], "--group_size=1: expected >= 2"),
    ("train_igpo", ["--group_size=0"], "--group_size=0: expected >= 2"),
    ("train_igpo", ["--mu=0"], "--mu=0: expected >= 1"),
    ("train_igpo", ["--levels=0"], "--levels=0: expected comma-separated integers in [1, 6]"),
    ("train_igpo", ["--levels=4,9"], "--levels=4,9: expected comma-separated integers in [1, 6]"),
    ("train_igpo", ["--eval_interval=0"], "--eval_interval=0: expected >= 1"),
    ("train_igpo", ["--prompts_per_step=0"], "--prompts_per_step=0: expected >= 1"),
    ("train_igpo", ["--prompts_per_step=15"], "--prompts_per_step=15 must divide by the number of --kinds"),
    ("train_igpo", ["--remasking=foo"], "--remasking=foo: expected one of 'low_confidence', 'random'"),
    ("train_igpo", ["--temperature=-1"], "--temperature=-1.0: expected >= 0"),
    ("train_igpo", ["--kinds=easy,medium"], "--kinds=easy,medium: expected comma-separated, from"),
    ("train_igpo", ["--ratio=seq"], "--ratio=seq: expected one of 'sequence', 'token'"),
    ("train_igpo", ["--eta_low=0.5", "--eta_high=0.4"], "--eta_high=0.4: expected in [--eta_low, 1]"),
    ("train_igpo", ["--chunk_min=5", "--chunk_max=4"], "--chunk_max=4: expected >= --chunk_min"),
    ("train_igpo", ["--gen_len=7"], "gen_len=7 is not divisible by block_len=8"),
    ("eval", ["--block_len=-8"], "--block_len=-8: expected >= 0"),
    ("eval", ["--limit=-1"], "--limit=-1: expected >= 0"),
    ("eval", ["--temperature=-1"], "--temperature=-1.0: expected >= 0"),
    ("eval", ["--batch_size=0"], "--batch_size=0: expected >= 1"),
    ("eval", ["--cache=foo"], "--cache=foo: expected one of 'none', 'prefix', 'dual'"),
    ("eval", ["--gen_lens=16,x"], "--gen_lens=16,x: expected comma-separated integers"),
    ("sample", ["--gen_len=0"], "gen_len=0, block_len=8, steps=16: each must be >= 1"),
    ("sample", ["--ckpt="], "--ckpt=: expected a checkpoint folder (required)"),
    ("bench", ["--batch=0"], "--batch=0: expected >= 1"),
]


def fails(script: str, argv: list, match: str, exc=(ValueError, FileNotFoundError)) -> str:
    """Run a script's main in-process; -> its error message, which must hold `match` on one line."""
    with pytest.raises(exc) as e:
        MAINS[script](argv)
    assert match in str(e.value) and "\n" not in str(e.value), str(e.value)
    return str(e.value)


@pytest.mark.parametrize("script, flags, message", BAD_FLAGS)
def test_a_bad_flag_is_a_one_line_error_before_any_writing(script, flags, message, tmp_path):
    out = tmp_path / "out"
    where = {"sft": [f"--out_dir={out}"], "train_igpo": [f"--out_dir={out}"], "sample": ["--ckpt=x"],
             "eval": [f"--out_dir={out}", f"--ckpt={tmp_path}"], "bench": []}[script]
    fails(script, where + flags, message)
    assert not out.exists()


def test_the_entry_point_prints_one_line_and_exits_nonzero():
    p = subprocess.run([sys.executable, "sft.py", "--batch_size=-4"], cwd=REPO, env=child_env(),
                       capture_output=True, text=True)
    assert (p.returncode, p.stderr, p.stdout) == (1, "error: --batch_size=-4: expected >= 1\n", "")


@pytest.mark.parametrize("script", list(MAINS))
def test_help_prints_every_flag_with_its_default_and_comment(script, capsys):
    with pytest.raises(SystemExit) as e:
        MAINS[script](["--help"])
    text = capsys.readouterr().out
    cfg = sys.modules[MAINS[script].__module__].Config()
    assert e.value.code == 0
    assert all(f"--{f.name}={getattr(cfg, f.name)}" in text for f in dataclasses.fields(cfg))
    comment = {"sft": "sequences per step, over all ranks", "train_igpo": "G rollouts per prompt",
               "eval": "0 = gen_len / 2 (d1's protocol", "sample": "print the whole canvas after every step",
               "bench": "rollouts per sampler call"}[script]
    assert comment in text


def test_rewrite_help_shows_defaults_and_never_the_api_key(capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    with pytest.raises(SystemExit):
        rewrite.main(["--help"])
    text = capsys.readouterr().out
    assert "concurrent requests (default: 8)" in text and "sk-secret" not in text


# ---- files: each error names the file (and line)

def write(path, content) -> str:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


OK_ROW = {"problem": "p", "trace": "t", "answer": "1", "status": "ok"}
BAD_DATA = [  # (content of --data, message after the path)
    (json.dumps(OK_ROW) + "\n" + json.dumps({"problem": "p", "answer": "1", "status": "ok"}) + "\n",
     ":2: field 'trace' missing or not str"),
    (json.dumps(OK_ROW) + "\n" + json.dumps([OK_ROW]) + "\n", ":2: expected a JSON object, got a list"),
    (json.dumps(OK_ROW) + "\n{\"problem\": \n", ":2: not valid JSON"),
    (b'{"problem": "\xff"}\n', ":1: not UTF-8 text"),
]


@pytest.mark.parametrize("content, message", BAD_DATA)
def test_a_bad_data_file_names_its_line(content, message, tmp_path):
    data = write(tmp_path / "d.jsonl", content)
    fails("sft", [f"--data={data}", f"--out_dir={tmp_path / 'out'}"], data + message)
    assert not (tmp_path / "out").exists()


def test_a_missing_data_file_or_a_folder_is_named(tmp_path):
    fails("sft", [f"--data={tmp_path / 'missing.jsonl'}"], f"{tmp_path / 'missing.jsonl'}: no such file")
    fails("sft", [f"--data={tmp_path}", f"--out_dir={tmp_path / 'out'}"], f"{tmp_path}: a folder, not a file")


@pytest.fixture
def ckpt(tmp_path):
    M.save(M.build(TINY, "cpu", seed=0), str(tmp_path / "ckpt"))
    return tmp_path / "ckpt"


def test_a_truncated_weights_file_or_a_bad_config_is_named(ckpt, tmp_path):
    weights, config = ckpt / "model.safetensors", ckpt / "config.json"
    out = [f"--out_dir={tmp_path / 'out'}", f"--init_from={ckpt}"]
    good = config.read_text()
    config.write_text(json.dumps({k: v for k, v in json.loads(good).items() if k != "n_head"}))
    fails("sft", out, f"{config}: missing fields ['n_head']")  # not the tiny preset's 4 heads
    config.write_text(good[:-5])
    fails("sft", out, f"{config}:")
    config.write_text(good)
    weights.write_bytes(weights.read_bytes()[:-100])
    fails("sft", out, f"{weights}: not a readable safetensors file")
    assert not (tmp_path / "out").exists()


def eval_fails(ckpt, tmp_path, message: str):
    """eval.py on ckpt: a one-line error holding `message`; nothing written, ckpt byte for byte as it was."""
    before = snapshot(ckpt)
    fails("eval", [f"--ckpt={ckpt}", f"--out_dir={tmp_path / 'ev'}", "--limit=2"], message)
    assert snapshot(ckpt) == before and not (tmp_path / "ev").exists()


@pytest.mark.parametrize("field, value, message", [
    ("n_layer", "4", "field 'n_layer' is \"4\", expected a positive int"),
    ("n_embd", 128.0, "field 'n_embd' is 128.0, expected a positive int"),
    ("vocab_size", None, "field 'vocab_size' is null, expected a positive int"),
    ("n_head", 0, "field 'n_head' is 0, expected a positive int"),  # eval.py wrote its files first, once
    ("n_head", 3, "field 'n_embd' is 32, expected a multiple of twice n_head (3)"),
    ("rope_theta", "1e4", "field 'rope_theta' is \"1e4\", expected a positive float"),
    ("tokenizer", 1, "field 'tokenizer' is 1, expected a string")])
def test_a_config_field_of_the_wrong_type_or_value_is_named(ckpt, tmp_path, field, value, message):
    config = ckpt / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), field: value}))
    eval_fails(ckpt, tmp_path, f"{config}: {message}")


@pytest.mark.parametrize("meta, message", [
    ({"script": "sft"}, "field 'step' is missing, expected an integer >= 0"),
    ({"step": "20"}, "field 'step' is \"20\", expected an integer >= 0"),
    ([20], "expected a JSON object, got a list")])
def test_a_bad_meta_json_is_named_when_evaluated(ckpt, tmp_path, meta, message):
    write(ckpt / "meta.json", json.dumps(meta))
    eval_fails(ckpt, tmp_path, f"{ckpt / 'meta.json'}: {message}")


@pytest.fixture
def hf(tmp_path):
    """A Hugging Face LLaDA folder (config.json, shards + index) of a tiny model, with no tokenizer yet."""
    M.export_hf(M.build(TINY, "cpu", seed=0), str(tmp_path / "hf"))
    return tmp_path / "hf"


def test_a_bad_hf_config_or_index_is_named(hf, tmp_path):
    config, index = hf / "config.json", hf / "model.safetensors.index.json"
    good = config.read_text()
    write(config, json.dumps({**json.loads(good), "n_layers": "4"}))
    eval_fails(hf, tmp_path, f"{config}: field 'n_layers' is \"4\", expected a positive int")
    write(config, good)
    write(index, json.dumps({"metadata": {"total_size": 1}}))
    eval_fails(hf, tmp_path, f"{index}: field 'weight_map' missing or not an object of key -> file name")


LLADA = [{"id": i, "content": name, "special": True} for name, i in LLADA_IDS.items()]
BAD_TOKENIZER = [  # (tokenizer.json, tokenizer_config.json or None, the message after the folder)
    ([], None, "tokenizer.json: expected a JSON object, got a list"),
    ({}, None, "tokenizer.json: model type None is not supported (only byte-level BPE)"),
    ({"model": "BPE"}, None, "tokenizer.json: field 'model' is \"BPE\", expected a JSON object"),
    (toy_json(model={"type": "WordPiece", "vocab": {"[UNK]": 0}}), None, "tokenizer.json: model type WordP"),
    (toy_json(), None, f"tokenizer.json (+ tokenizer_config.json): special token {MASK}: expected id 126336"),
    (toy_json(added_tokens=LLADA), {"added_tokens_decoder": {"x": {"content": MASK}}},
     "tokenizer_config.json: added_tokens_decoder entry 'x'"),
]


@pytest.mark.parametrize("tok, config, message", BAD_TOKENIZER)
def test_a_bad_tokenizer_file_is_named(hf, tmp_path, tok, config, message):
    write(hf / "tokenizer.json", json.dumps(tok))
    if config is not None:
        write(hf / "tokenizer_config.json", json.dumps(config))
    eval_fails(hf, tmp_path, f"{hf}/{message}")


def test_an_out_dir_that_is_a_file_under_a_file_or_empty_is_refused(ckpt, tmp_path):
    path = write(tmp_path / "f", "mine")
    fails("sft", [f"--out_dir={path}"], f"--out_dir={path}: expected a folder, not a file")
    fails("sft", [f"--out_dir={path}/run"], f"{path}/run: cannot write there (Not a directory: ")
    fails("eval", [f"--out_dir={path}/run", f"--ckpt={ckpt}"], f"{path}/run: cannot write there (Not a dir")
    assert open(path).read() == "mine" and sorted(os.listdir(tmp_path)) == ["ckpt", "f"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any folder")
def test_an_out_dir_in_a_folder_we_may_not_write_is_refused(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    run = tmp_path / "ro" / "run"
    fails("sft", [f"--out_dir={run}"], f"{run}: cannot write there (Permission denied")
    assert os.listdir(tmp_path / "ro") == []


# ---- a run folder's checkpoint files on --resume: each error names the file and field, and changes nothing

SFT = ["--batch_size=2", "--n_eval=0", "--max_steps=1"]


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    """A finished one-step SFT run folder; tests change copies of it."""
    out = tmp_path_factory.mktemp("sft") / "run"
    sft.main(SFT + [f"--out_dir={out}"])
    return out


def drop(key):
    return lambda p: write(p, json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != key}))


RESUME_BAD = [  # (file, how it is spoilt, the message after its path)
    ("meta.json", drop("step"), ": field 'step' is missing, expected an integer >= 0"),
    ("meta.json", lambda p: write(p, json.dumps({**json.loads(p.read_text()), "step": "20"})),
     ": field 'step' is \"20\", expected an integer >= 0"),
    ("meta.json", drop("world_size"), ": field 'world_size' is missing, expected an integer >= 1"),
    ("meta.json", drop("config"), ": field 'config' is missing, expected an object"),
    ("optim.0.pt", lambda p: write(p, p.read_bytes()[:-100]), ": not a readable optimizer state (Pytorch"),
    ("log.jsonl", lambda p: (p.unlink(), p.mkdir()), ": a folder, not a file"),
    ("log.jsonl", lambda p: write(p, b'{"step": "\xff"}\n' + p.read_bytes()), ":1: not UTF-8 text"),
]


@pytest.mark.parametrize("name, spoil, message", RESUME_BAD)
def test_a_bad_checkpoint_file_on_resume_is_named_and_kept(sft_run, tmp_path, name, spoil, message):
    run = tmp_path / "run"
    shutil.copytree(sft_run, run)
    spoil(run / name)
    before = snapshot(run)
    fails("sft", SFT + [f"--out_dir={run}", "--resume=True", "--max_steps=2"], f"{run / name}{message}")
    assert snapshot(run) == before


def test_prompts_too_long_for_the_model_fail_before_training(tmp_path):
    out = tmp_path / "out"  # tiny: 256 positions; toy prompts are 15 tokens
    fails("sft", [f"--out_dir={out}", "--gen_len=248", "--block_len=8", "--steps=248"], "exceeds the model's")
    assert not out.exists()


def test_more_prompts_per_step_than_the_task_has(tmp_path):
    argv = [f"--out_dir={tmp_path / 'out'}", "--init_from=", "--prompts_per_step=60000"]
    fails("train_igpo", argv, "--prompts_per_step=60000: task toy has 50000 training prompts")
    assert not (tmp_path / "out").exists()


def test_an_empty_test_file_is_named(ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("NANO_IGPO_DATA", str(tmp_path))
    empty = write(tmp_path / "gsm8k_test.jsonl", "\n")
    fails("eval", [f"--ckpt={ckpt}", "--task=gsm8k", f"--out_dir={tmp_path / 'ev'}", "--gen_lens=16",
                   "--block_len=8"], f"{empty}: no problems in it")
    assert not (tmp_path / "ev").exists()


# ---- data/rewrite.py: every input error is one line naming the file and line, before any request

REWRITE_BAD = [  # (input file content or None for no file, extra flags, message)
    (None, [], "in.jsonl: no such file"),
    ('{"problem": \n', [], "in.jsonl:1: not valid JSON"),
    (b'{"problem": "\xff"}\n', [], "in.jsonl:1: not UTF-8 text"),
    ('[{"problem": "p", "solution": "s", "answer": "1"}]\n', [], "in.jsonl:1: expected a JSON object"),
    ('{"problem": "p", "solution": "s", "answer": "1"}\n', ["--workers=0"], "--workers=0: expected >= 1"),
    ('{"problem": "p", "solution": "s", "answer": "1"}\n', ["--retries=0"], "--retries=0: expected >= 1"),
]


@pytest.mark.parametrize("content, flags, message", REWRITE_BAD)
def test_rewrite_input_errors_are_one_line(content, flags, message, tmp_path):
    inp = tmp_path / "in.jsonl"
    if content is not None:
        write(inp, content)
    argv = [f"--in={inp}", f"--out={tmp_path / 'out.jsonl'}", "--url=http://127.0.0.1:9", "--model=m", *flags]
    with pytest.raises((ValueError, OSError), match=message.replace("[", r"\[")):
        rewrite.main(argv)
    assert not (tmp_path / "out.jsonl").exists()


def test_rewrite_entry_point_prints_one_line_for_a_folder(tmp_path):
    cmd = [sys.executable, "-m", "data.rewrite", f"--in={tmp_path}", f"--out={tmp_path / 'o.jsonl'}",
           "--url=http://127.0.0.1:9", "--model=m"]
    p = subprocess.run(cmd, cwd=REPO, env=child_env(), capture_output=True, text=True)
    assert (p.returncode, p.stderr) == (1, f"error: {tmp_path}: a folder, not a file\n")
