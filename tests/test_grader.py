r"""
The one grader (data/grader.py) behind both the RL reward and evaluation: answer extraction (with d1's
fallbacks where they are right), equivalence, format reward, prompts; and the official IGPO reward, a choice
for training. Pure string functions, no files.

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


def test_unclosed_box_reads_to_the_end_of_its_line():
    # LLaDA often forgets the "}": d1 credits these through its <answer> fallback, and so do we
    assert extract_answer("<answer>\n\\boxed{160\n</answer>") == "160"
    assert grader.correct("so it is \\boxed{360\\text{ hours} hours.\n</answer>", "360")
    assert extract_answer(r"so \boxed{12") == "12"
    assert extract_answer(r"\boxed{") is None


def test_answer_tags_without_a_box():
    # the largest group d1 credits and a box-only grader misses: LLaDA-8B-Instruct at 128 tokens
    for inside, gt in [("10", "10"), ("$400", "400"), ("130 dollars", "130"), ("5 changes/day", "5"),
                       (r"\frac{1}{4}", "0.25"), ("216°", r"216^\circ"), ("-3", "-3")]:
        text = f"<reasoning>\n13 + 5 = 18\n</reasoning>\n<answer>\n{inside}\n</answer>"
        assert grader.correct(text, gt), inside
    assert extract_answer("<answer>\nsteps\n</answer>\n<answer>\n7\n</answer>") == "7"  # the last block
    assert extract_answer("<answer>\n7\n</answer> then \\boxed{8}") == "8"  # a box comes first
    assert extract_answer("#### 5\n<answer>\n \n</answer>") == "5"  # empty tags: the next fallback
    assert extract_answer("<answer>\n7") is None  # never closed


def test_empty_box_then_the_number():
    assert grader.correct("<answer>\n\\boxed{}101\n</answer>", "101")
    assert grader.correct("<answer>\n\\boxed{...} 18\n</answer>", "18")
    assert extract_answer(r"\boxed{} and then \boxed{7} and \boxed{ }") == "7"  # blank boxes never count


def test_nested_boxes_give_the_inner_answer():
    assert extract_answer(r"\boxed{\boxed{18}}") == "18"
    assert extract_answer(r"\[ \boxed{ \boxed{\frac{\sqrt{21}}{5}} } \]") == r"\frac{\sqrt{21}}{5}"
    assert extract_answer(r"\boxed{\boxed{1} + \boxed{2}}") == r"\boxed{1} + \boxed{2}"  # not one box inside
    assert extract_answer("\\boxed{" * 5000 + "7" + "}" * 5000) == "7"


def test_boxed_without_its_backslash():
    assert extract_answer("<answer>\nboxed{4}\n</answer>") == "4"
    assert extract_answer(r"costs \(boxed{2}\) dollars") == "2"
    assert extract_answer("unboxed{3}") is None


@pytest.mark.parametrize("text, gt", [
    (r"\boxed{800 ml}", "800"), (r"\boxed{16 hours}", "16"), (r"\boxed{20 miles}", "20"),
    (r"\boxed{240 sheets per month}", "240"), (r"\boxed{\$18 a day}", "18"),
    (r"\boxed{16\text{ hours}}", "16"),
    (r"\boxed{Juice Box C is 2 dollars more than Juice Box B.}", "2"), (r"\boxed{16 + 2 = 18 apples}", "18"),
    (r"\boxed{6,277 people}", "6277"), (r"\boxed{-\$5}", "-5"), (r"\boxed{1/2 cup}", "0.5"),
    (r"\boxed{12 cm}", "12"), (r"\boxed{50 mph}", "50"), (r"\boxed{\frac34 cup}", "0.75"),
    (r"\boxed{\frac{1}{2} hours}", "0.5"), (r"\boxed{.5 liters}", "0.5"),
    (r"\boxed{\mathbf{18} apples}", "18"), (r"\boxed{6\pi \text{ cm}}", r"6\pi"),
    (r"\boxed{15\mbox{ cm}^2\text{ in all}}", "15"),
])
def test_a_unit_or_words_around_the_number(text, gt):
    assert grader.correct(text, gt)


@pytest.mark.parametrize("pred, gt", [
    ("x^2", "2"), ("2x", "2"), ("2 x", "2"), ("y 2", "2"), (r"2\pi", "2"), ("2 pi", "2"), (r"2\sqrt{2}", "2"),
    (r"\sqrt{2}", "2"), ("1 million", "1"), ("2 dozen eggs", "2"), ("5 squared", "5"), ("3 thirds", "3"),
    ("more than 18", "18"), ("at least 18", "18"), ("not 18", "18"), ("minus 5", "5"), ("18 or 19", "18"),
    ("1,2", "1"), ("5 - 3", "5"), ("16 hours and 30 minutes", "16"), ("2 and a half", "2"),
    ("16 hours", "hours"),
    (r"\frac{2}{3} dollars", "2"), ("2:30 pm", "2"), ("5 - 3 = 2 apples", "5"), (r"2\frac{1}{2} cups", "0.5"),
    (r"2\frac{1}{2} cups", "2"), (r"\frac123 cups", "0.5"),
])
def test_words_never_make_a_wrong_answer_right(pred, gt):
    assert not is_equiv(pred, gt) and not grader.correct(rf"\boxed{{{pred}}}", gt)


@pytest.mark.parametrize("text, gt", [  # d1 reads these wrong; we stay right
    (r"\boxed{6,277}", "6277"), (r"\boxed{385\,000}", "385000"), (r"\boxed{-10}", "-10"),
    (r"\boxed{\frac14}", "0.25"), (r"\boxed{15.975}", r"\frac{639}{40}"), (r"\boxed{45/3}", "15"),
    ("\\boxed{\n18\n}", "18"), ("\\boxed\n{90}", "90"), (r"\boxed{16} no, wait: \boxed{18}", "18"),
])
def test_where_d1_is_wrong_we_stay_right(text, gt):
    assert grader.correct(text, gt)


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
    (r"10\text{ cm}", "10"), (r"864 \mbox{ inches}^2", "864"),
    (r"\frac{270}7\text{ degrees}", r"\frac{270}{7}"),
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
    assert format_reward("<answer>\n1</answer><answer>\n2</answer>") == 0.0  # each tag exactly once


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


# ----------------------------------------------------------------------------- the official reward

@pytest.mark.parametrize("text, gt, right", [
    (FULL, "72", True),                                            # the reference format
    (r"\boxed{16} no, wait: \boxed{18}", "18", False),             # the first box only
    (r"\boxed{16} no, wait: \boxed{18}", "16", True),
    (r"\boxed{1 and then \boxed{18}", "18", False),                # the first box never closes: ""
    (r"\boxed{\boxed{18}}", "18", True),                           # nested: unwrapped once more
    ("<answer>\n18\n</answer>", "18", False),                      # no box
    (r"\boxed{} 18", "18", False),                                 # an empty first box
    (r"\boxed{800 ml}", "800", False),                             # a bare unit
    (r"\boxed{16\text{ hours}}", "16", True),                      # a "\text{ " unit is cut
    (r"\boxed{6,277}", "6277", False),                             # strings, not numbers
    (r"\boxed{72.0}", "72", False),
    (r"\boxed{0.25}", r"\frac14", False),
    (r"\boxed{0.5}", r"\frac12", True),                            # its one special case
    (r"\boxed{1/2}", r"\frac{1}{2}", True),
    (r"\boxed{-\$5}", "-5", True),
    ("\\boxed{\n18\n}", "18", True),                               # newlines go
    (r"\boxed{x = 5}", "5", True),
    (r"\boxed{2\sqrt}", r"2\sqrt", True),                          # its normalisation raises: raw equality
    (r"\boxed{2\sqrt}", "2", False),
    (r"\boxed{\sqrt 3}", r"\sqrt{3}", False),                      # a quirk kept: "\sqrt 3" -> "\sqrt{}3"
])
def test_official_reward_grades_the_first_box_by_its_strings(text, gt, right):
    assert grader.official_correct(text, gt) == right
    assert grader.official_reward(text, gt) == 3.0 * right + format_reward(text)


def test_official_reward_pays_the_same_format_terms():
    assert grader.official_reward(FULL, "72") == reward(FULL, "72") == 3.75
    assert grader.official_reward(FULL, "71") == 0.75
    assert grader.official_answer(r"\boxed{ \boxed 5$ }") == "5"


@pytest.mark.parametrize("text", ["", r"\boxed{", r"\boxed{\boxed{", "}{" * 50, r"\boxed{\frac}", None, 12])
def test_official_reward_never_raises(text):
    assert grader.official_reward(text, "1") == format_reward(text)
