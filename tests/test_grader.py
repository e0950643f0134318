r"""
The one grader (data/grader.py) behind both the RL reward and evaluation: answer extraction, equivalence,
format reward, prompts. Pure string functions, no files.

    python -m pytest tests/test_grader.py -q
"""
import pytest

from data import grader
from data.grader import extract_answer, format_reward, is_equiv, normalize, reward

FULL = "<reasoning>\n48/2 = 24, 48+24 = 72\n</reasoning>\n<answer>\n\\boxed{72}\n</answer>"


def test_box_content_keeps_nested_braces():
    assert extract_answer(r"so $x = \boxed{\frac{1}{\sqrt{2}}}$.") == r"\frac{1}{\sqrt{2}}"
    assert extract_answer(r"\boxed{\{1,2\}}") == r"\{1,2\}"


def test_several_boxes_give_the_last():
    assert extract_answer(r"first \boxed{3}, then on reflection \boxed{4}") == "4"
    assert extract_answer(r"\boxed{12} and a truncated \boxed{1") == "12"  # an unclosed box does not count


def test_boxed_space_and_fbox_forms():
    assert extract_answer(r"the answer is $\boxed 5$.") == "5"
    assert extract_answer(r"\boxed 7.") == "7"
    assert extract_answer(r"\fbox{8}") == "8"
    assert extract_answer(r"\boxedx") is None  # some other macro, not a box


def test_unbalanced_box_alone_extracts_nothing():
    assert extract_answer(r"so \boxed{12") is None
    assert extract_answer(r"\boxed{") is None


def test_fallbacks_hash_then_answer_is():
    assert extract_answer("48+24 = 72\n#### 72") == "72"
    assert extract_answer("#### 1 \n#### 1,000.\n") == "1,000"  # the last one, trailing period stripped
    assert extract_answer("So it is 5.\nThe answer is: $18.") == "18"
    assert extract_answer("The answer is 3. Wait, the answer is 4.\n") == "4"
    assert extract_answer(r"#### 5 but \boxed{6}") == "6"  # a box beats the fallbacks


@pytest.mark.parametrize("text", ["", "   ", "no answer here", "####", "The answer is", r"\boxed", "}{" * 50,
                                  "\x00\x08oxed{1}", "\\" * 7, None, 12])
def test_malformed_completions_score_zero_and_never_raise(text):
    assert extract_answer(text) is None
    assert reward(text, "1") == 0.0
    assert not grader.correct(text, "1")


def test_many_unclosed_boxes_take_linear_time():
    text = r"\boxed{" * 20000  # a degenerate generation; a rescan per box would be 10^8 steps
    assert extract_answer(text) is None and reward(text, "1") == 0.25  # only the "\boxed{" format bonus


class CountingStr(str):
    """A str that counts the characters its slices copy: the work of a grader that cuts the text up."""
    copied = 0

    def __getitem__(self, key):
        out = str.__getitem__(self, key)
        CountingStr.copied += len(out)
        return out


@pytest.mark.parametrize("unit", [r"\boxed 1 ", r"\boxed{1} ", r"$\boxed{1}$ "])
def test_many_boxes_cost_linear_work(unit):
    text = CountingStr(unit * 20000)
    CountingStr.copied = 0
    assert extract_answer(text) == "1" and grader.remove_boxes(text).strip() == ""
    assert CountingStr.copied < 10 * len(text)  # re-reading the rest per box copies about 20000 * len / 2


def test_200000_boxes_grade_correctly():
    text = r"\boxed 1 " * 200000  # took about 15 s when each box re-sliced the rest of the text
    assert extract_answer(text) == "1" and grader.correct(text, "1") and not grader.correct(text, "2")
    assert grader.remove_boxes(text) == " " * 200000


@pytest.mark.parametrize("pred, gt", [
    ("72", "72.0"), ("72.00", "72"), ("1,000", "1000"), ("1,000,000", "1000000"), (r"10,\!080", "10080"),
    (r"\frac12", "0.5"), ("1/2", "0.5"), (r"\frac{1}{2}", "1/2"), (r"-\frac{3}{4}", "-0.75"),
    (r"\dfrac{3}{4}", r"\frac34"), (r"\tfrac{3}{4}", "0.75"), (".5", "0.5"), ("025", "25"),
    (r"50\%", "50"), ("50%", "50"), (r"90^\circ", "90"), (r"90^{\circ}", "90"), ("90°", "90"),
    (r"10\text{ cm}", "10"), (r"864 \mbox{ inches}^2", "864"), (r"\frac{270}7\text{ degrees}", r"\frac{270}{7}"),
    (r"\$32,\!348", "32348"), (r"\$18.90", "18.9"), (r"\text{(C)}", "(C)"), (r"\text{Evelyn}", "Evelyn"),
    ("x = 5", "5"), ("x=5", "5"), (r"\sqrt3", r"\sqrt{3}"), (r"10\sqrt 2", r"10\sqrt{2}"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"), (r"\textbf{(113) }", "113"),
])
def test_equivalent_answers(pred, gt):
    assert is_equiv(pred, gt) and is_equiv(gt, pred)


@pytest.mark.parametrize("pred, gt", [
    ("72", "73"), ("0.333", r"\frac13"), ("1,2", "12"), ("(1,2)", "(2,1)"), ("5x - 7y + 11z + 4 = 0", "0"),
    (r"\frac{1}{0}", "1"), ("", ""), (None, "1"), ("1", None), ("9" * 5000, "9" * 5000 + ".0"),
])
def test_different_answers(pred, gt):
    assert not is_equiv(pred, gt)


def test_numbers_compare_exactly_not_with_a_tolerance():
    assert not is_equiv("0.3333333333333333", r"\frac{1}{3}")
    assert is_equiv("0.1", r"\frac{1}{10}")  # exact in decimal, though not in binary floating point


def test_normalize_follows_strip_string():
    assert normalize(r"\left( \dfrac{1}{2}, 3 \right)") == r"(\frac{1}{2},3)"
    assert normalize("k = 7") == "7" and normalize("y = 2x + 3") == "2x+3"
    assert normalize(r"\frac1{2}") == r"\frac{1}{2}" and normalize(r"\frac{a}b") == r"\frac{a}{b}"


def test_format_reward_values():
    assert format_reward(FULL) == 0.75
    assert format_reward("") == 0.0
    assert format_reward("<reasoning>\nhi\n</reasoning>") == 0.25
    assert format_reward(r"just \boxed{3}") == 0.25
    assert format_reward("<answer>\n1</answer><answer>\n2</answer>") == 0.0  # each tag must appear exactly once


def test_reward_is_three_for_correct_plus_format():
    assert reward(FULL, "72") == 3.75
    assert reward(FULL, "72.0") == 3.75
    assert reward(FULL, "71") == 0.75
    assert reward("#### 72", "72") == 3.0


def test_target_is_fully_formatted_and_correct():
    text = grader.target("24 + 48 = 72", "72")
    assert format_reward(text) == 0.75 and grader.correct(text, "72")


def test_prompts_spell_boxed_and_differ_by_kind():
    assert "\x08" not in grader.SYSTEM_PROMPT and "\\boxed{<Your answer>}" in grader.SYSTEM_PROMPT
    assert grader.make_prompt("Q?", "train") == grader.SYSTEM_PROMPT + "\n\nQ?"
    assert grader.make_prompt("Q?", "eval").startswith("You are a math expert.")
    assert grader.make_prompt("Q?", "eval").endswith("\\boxed{...}\n</answer>\n\nQ?")
    with pytest.raises(ValueError):
        grader.make_prompt("Q?", "test")


def test_remove_boxes_cuts_the_answer_and_its_dollars():
    assert grader.remove_boxes(r"so $x = \boxed{6}$.") == "so $x = $."
    assert grader.remove_boxes(r"our answer is $\boxed{1}.$") == "our answer is ."
    assert grader.remove_boxes(r"$\boxed{2}$ or $\boxed{2}$ again") == " or  again"
    assert grader.remove_boxes("no box") == "no box"
