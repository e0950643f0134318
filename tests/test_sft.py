"""SFT loss, the toy task, and exact resume. Run: python -m pytest -q tests/test_sft.py"""
import math
import os

import torch

import sft
from common import commit_checkpoint
from data import arith


def test_sft_loss_equals_hand_computation_on_1x4():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]]])  # (1, 4, 3)
    response = torch.tensor([[0, 2, 2, 1]])
    t, u = torch.tensor([0.5]), torch.tensor([[0.9, 0.1, 0.3, 0.6]])
    noisy, masked, p = sft.corrupt(response, t, u, eps=1e-3, mask_id=9)
    pv = 0.999 * 0.5 + 1e-3
    assert masked.tolist() == [[False, True, True, False]] and noisy.tolist() == [[0, 9, 9, 1]]
    ce1 = -math.log(math.exp(0) / (math.exp(0) + math.exp(1) + math.exp(0)))  # position 1, target 2
    ce2 = -math.log(math.exp(3) / (2 + math.exp(3)))                        # position 2, target 2
    expected = (ce1 + ce2) / pv / 4  # weighted by 1/p, divided by the response length
    assert abs(sft.sft_loss(logits, response, masked, p).item() - expected) < 1e-6


def test_toy_scorer_right_wrong_and_malformed():
    ex = arith.make(__import__("random").Random(0), 3)
    assert arith.correct(ex["trace"], ex)
    assert arith.correct(ex["trace"] + "\n\n", ex)
    wrong = ex["trace"][:-1] + str((int(ex["answer"]) + 1) % 10)
    assert not arith.correct(wrong, ex)
    lines = ex["trace"].split("\n")  # the right answer after a wrong line is wrong: the whole chain counts
    assert not arith.correct("\n".join(lines[:1] + [str((int(lines[1]) + 1) % 10)] + lines[2:]), ex)
    for bad in ["", "\n", "abc", "12+3=", "=" * 5, "1\n2x", "\u00e9"]:
        assert arith.reward(bad, ex) == 0.0


def test_toy_trace_computes_the_question_and_writes_each_result_once():
    train, test = arith.load("train", n=3000), arith.load("test", n=300)
    assert not {e["question"] for e in train} & {e["question"] for e in test}
    assert len({len(e["question"]) for e in train + test}) == 1  # fixed width
    assert [e["kind"] for e in train[:8]] == list(arith.SFT_KINDS) * 2  # SFT: 3/4 easy, 1/4 weak teacher
    assert {e["kind"] for e in test} == {"easy", "hard"}
    rl = arith.load("train", n=300, kinds=("easy", "hard"))
    for ex in [e for e in train[:400] if e["kind"] == "easy"] + rl + test[:300]:
        values = [int(v) for v in ex["trace"].split("\n")]
        assert len(values) == ex["level"] + 1 and values[-1] == int(ex["answer"])
        assert all(0 <= v <= arith.MAX_VALUE for v in values)
        # the trace computes the question: the start value, then each step's result
        assert eval(ex["question"].rstrip(".")) == values[-1] and ex["question"][0] == str(values[0])
        steps = [abs(b - a) for a, b in zip(values, values[1:])]
        n_big = sum(s >= arith.BIG[0] for s in steps)
        assert (n_big >= arith.MIN_BIG) == (ex["kind"] == "hard")  # a hard problem has two big steps
        assert ex["kind"] == "easy" or ex["level"] >= arith.MIN_BIG
        assert arith.hint(ex) == ex["trace"]  # the hint: the whole trace
        assert [res for _, res in arith.probes(ex)] == ex["trace"].split("\n")[1:]


def test_the_weak_teacher_slips_on_big_steps_and_follows_its_own_lines():
    weak = [e for e in arith.load("train", n=8000) if e["kind"] == "weak"]
    right = slips = 0
    for ex in weak:
        values = [int(v) for v in ex["trace"].split("\n")]
        ops = [int(ex["question"][1 + 2 * i:3 + 2 * i]) for i in range(ex["level"])]  # "+4" -> 4, "-5" -> -5
        assert sum(abs(o) >= arith.BIG[0] for o in ops) >= arith.MIN_BIG  # a hard problem's question
        assert all(0 <= v <= arith.MAX_VALUE for v in values) and values[-1] == int(ex["answer"])
        for o, a, b in zip(ops, values, values[1:]):  # each line from the line above it, as written
            sign = 1 if o > 0 else -1
            if abs(o) < arith.BIG[0]:
                assert b - a == o  # easy steps are always right
            else:
                assert b - a in (o, o - 2 * sign)  # right, or the operand applied as b - 2
                right, slips = right + (b - a == o), slips + (b - a != o)
    assert abs(right / (right + slips) - arith.TEACHER_RIGHT) < 0.05  # redrawn slips shift it a little


def test_resumed_sft_equals_uninterrupted(tmp_path):
    common = ["--preset=tiny", "--batch_size=8", "--n_eval=0", "--log_interval=1", "--warmup=2",
              "--max_steps=4"]
    a = sft.main(common + [f"--out_dir={tmp_path}/a"])
    sft.main(common + [f"--out_dir={tmp_path}/b", "--max_minutes=0.0000001"])  # stops after one step
    os.makedirs(f"{tmp_path}/b/.next")  # a later save cut short by a crash: no meta.json, a torn weights file
    open(f"{tmp_path}/b/.next/model.safetensors", "wb").write(b"torn")
    b = sft.main(common + [f"--out_dir={tmp_path}/b", "--resume=True"])
    assert a["steps"] == b["steps"] == 4 and a["final_loss"] == b["final_loss"]
    from safetensors.torch import load_file
    wa, wb = load_file(f"{tmp_path}/a/model.safetensors"), load_file(f"{tmp_path}/b/model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_an_interrupted_checkpoint_move_is_rolled_forward(tmp_path):
    for d, step in ((tmp_path, 1), (tmp_path / ".next", 2)):  # the checkpoint of step 1, step 2's staged
        os.makedirs(d, exist_ok=True)
        for f in ("model.safetensors", "optim.0.pt", "meta.json"):
            (d / f).write_text(f"{f} {step}")
    os.replace(tmp_path / ".next" / "model.safetensors", tmp_path / "model.safetensors")  # crashed mid-move
    commit_checkpoint(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["meta.json", "model.safetensors", "optim.0.pt"]
    assert all((tmp_path / f).read_text() == f"{f} 2" for f in os.listdir(tmp_path))
