r"""
The one answer grader: the RL reward and the evaluation score both call it, so a completion that earns
the correctness reward in training is exactly one that counts as right in evaluation.

    extract_answer(text)   the LAST \boxed{...} (or \boxed 5, \fbox{...}); else the last "#### X";
                           else the last "The answer is X"; else None
    normalize(ans)         Hendrycks-MATH-style string cleanup (tfrac/dfrac, \left/\right, units, ...)
    is_equiv(pred, gt)     normalized strings equal, or both are numbers with the same exact value
    reward(text, gt)       3.0 * correct + format_reward, the scale of IGPO.md B.7.2

Unlike the official code (IGPO.md B.10.15), which rewards the FIRST box in training but scores the LAST
box in evaluation, there is ONE rule here: the last box, for both. Numbers are compared exactly with
fractions.Fraction, so "72" = "72.0" = "72.00", "1,000" = "1000" and "\frac12" = "0.5" = "1/2"; the
official is_equiv compares strings only and marks "72.0" wrong against "72" (B.7.2). Grading never raises,
whatever the completion: a malformed one simply scores 0.
"""
import re
from fractions import Fraction

# B.7.1, with \boxed spelled right: the official literal "\boxed" is a Python escape, a backspace + "oxed"
SYSTEM_PROMPT = ("\nRespond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n"
                 "\\boxed{<Your answer>}\n</answer>\n")
# B.7.3: d1's evaluation prompt (dllm-reasoning/d1 eval/gsm8k.py), trailing space after "\boxed{}." included
EVAL_PROMPT = ("You are a math expert. You will be given a question to solve. Solve it step by step. "
               "Wrap the final answer in a \\boxed{}. \nRespond in the following format:\n<reasoning>\n"
               "Your reasoning here\n</reasoning>\n<answer>\n\\boxed{...}\n</answer>")
CORRECT_REWARD = 3.0  # B.7.2: correctness_reward_func pays 3.0 for an equivalent answer


def make_prompt(question: str, kind: str = "train") -> str:
    if kind not in ("train", "eval"):
        raise ValueError(f"prompt kind {kind!r}: expected 'train' or 'eval'")
    return (SYSTEM_PROMPT if kind == "train" else EVAL_PROMPT) + "\n\n" + question


def target(trace: str, answer: str) -> str:
    """The SFT target: exactly the response format the system prompt asks for."""
    return f"<reasoning>\n{trace}\n</reasoning>\n<answer>\n\\boxed{{{answer}}}\n</answer>"

# ----------------------------------------------------------------------------- extraction

BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])(\s*)")
WORD = re.compile(r"[^\s$]+")  # the answer of "\boxed 5"


def brace_pairs(text: str) -> dict[int, int]:
    """{index of "{": index of its closing "}"} in one pass: a stack, so many unclosed boxes stay linear."""
    pairs, stack = {}, []
    for j, c in enumerate(text):
        if c == "{":
            stack.append(j)
        elif c == "}" and stack:  # \{ and \} pair up among themselves, like plain braces
            pairs[stack.pop()] = j
    return pairs


def boxes(text: str) -> list[tuple[int, int, str]]:
    """Every outermost well-formed box as (start, end, content), left to right. A box whose braces never
    close (a truncated generation) is skipped, so the fallbacks still get their turn. Linear in len(text):
    positions only move forward and no slice is taken until a box is found."""
    found, pos, pairs = [], 0, None
    while (m := BOX.search(text, pos)):
        i = pos = m.end()
        if text.startswith("{", i):
            pairs = brace_pairs(text) if pairs is None else pairs
            if i in pairs:
                found.append((m.start(), pairs[i] + 1, text[i + 1:pairs[i]]))
                pos = pairs[i] + 1
        elif m.group(1) and (w := WORD.match(text, i)):  # "\boxed 5": needs the space
            found.append((m.start(), w.end(), w.group().rstrip(".")))
            pos = w.end()
    return found


def strip_final(s: str) -> str | None:
    # what follows "####" or "The answer is": the rest of its line, without a trailing "." or "$"
    s = s.split("\n")[0].strip().lstrip(":$ ").rstrip(" .$")
    return s or None


def extract_answer(text: str) -> str | None:
    if not isinstance(text, str):
        return None
    if found := boxes(text):
        return found[-1][2].strip()
    if "####" in text:  # GSM8K's reference format
        return strip_final(text.rsplit("####", 1)[1])
    low = text.lower()  # MetaMathQA's "The answer is: X"
    if (k := low.rfind("the answer is")) >= 0:
        return strip_final(text[k + len("the answer is"):])
    return None


def remove_boxes(text: str) -> str:
    """The text with every box cut out, "$" wrappers too: the IGPO hint of a MATH-style trace. Every box,
    not just the last, since MATH solutions sometimes box the answer twice (114 of 7500 train ones)."""
    kept, pos = [], 0  # pieces joined once at the end: cutting boxes one by one would be quadratic
    for start, end, _ in boxes(text):
        close = re.match(r"([.,;]?)\$", text[end:end + 2])  # "$\boxed{5}.$" -> ".", not "$.$"
        if text[start - 1:start] == "$" and start > pos and close:
            kept += [text[pos:start - 1], close.group(1)]
            pos = end + close.end()
        else:
            kept.append(text[pos:start])
            pos = end
    return "".join(kept) + text[pos:]


# ----------------------------------------------------------------------------- equivalence


def normalize(ans: str) -> str:
    """In the spirit of Hendrycks' MATH strip_string: remove what never changes the value."""
    s = str(ans).strip().replace("\n", "")
    for old, new in [("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"), ("dfrac", "frac"), ("\\left", ""),
                     ("\\right", ""), ("\\displaystyle", ""), ("{,}", ","), ("\\,", " "), ("\\;", " "),
                     ("\\ ", " "), ("^{\\circ}", ""), ("^\\circ", ""), ("°", ""), ("\\$", ""), ("$", "")]:
        s = s.replace(old, new)
    # a trailing unit, e.g. "5.4 \text{ cents}", "864 \mbox{ inches}^2", "\frac{270}7\text{ degrees}"
    s = re.sub(r"(?<=[\d}.])\s*\\(?:text|mbox)\{[^{}]*\}(\^\{?\d\}?)?\s*$", "", s)
    s = re.sub(r"\\(?:text|textbf|mathbf|mbox|mathrm)\{([^{}]*)\}", r"\1", s)  # "\text{(C)}" -> "(C)"
    s = s.replace("\\%", "").replace("%", "").strip()
    # "x = 5" -> "5", but only for a short left side: "5x - 7y + 11z + 4 = 0" stays an equation
    if s.count("=") == 1 and len(s.split("=")[0].strip()) <= 2:
        s = s.split("=")[1].strip()
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    s = "0" + s if s.startswith(".") else s
    s = s.replace(" ", "")
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)  # after the spaces go, so "\sqrt 2" is caught too
    # \frac12 -> \frac{1}{2}, \frac1{2} -> \frac{1}{2}, \frac{1}2 -> \frac{1}{2}
    s = re.sub(r"\\frac(\w)(\w)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\w)\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\w)", r"\\frac{\1}{\2}", s)
    if re.fullmatch(r"-?\d+/\d+", s):  # "3/4" -> "\frac{3}{4}", as strip_string does
        s = re.sub(r"(-?)(\d+)/(\d+)", r"\1\\frac{\2}{\3}", s)
    return s


def to_number(s: str) -> Fraction | None:
    r"""The exact value of a normalized plain number, "1,000", "-0.75", "3/4" or "-\frac{3}{4}"; else None.
    No exponents: Fraction("1e999999999") would try to build a billion-digit integer."""
    s = s[1:-1] if re.fullmatch(r"\([^(),]*\)", s) else s  # AoPS boxes "\textbf{(113)}"; no tuples
    if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d*)?", s):  # thousands separators only; "1,2" is a pair
        s = s.replace(",", "")
    try:
        if re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)", s):
            return Fraction(s)
        if m := re.fullmatch(r"([-+]?)(?:(\d+)/(\d+)|\\frac\{([-+]?\d+)\}\{([-+]?\d+)\})", s):
            sign = -1 if m.group(1) == "-" else 1
            num, den = (m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5))
            return sign * Fraction(int(num), int(den))
    except (ValueError, ZeroDivisionError):  # x/0, or an integer too long for int() to parse
        pass
    return None


def is_equiv(pred: str | None, gt: str | None) -> bool:
    if not isinstance(pred, str) or not isinstance(gt, str):
        return False
    a, b = normalize(pred), normalize(gt)
    if a == "" or b == "":
        return False
    if a == b:
        return True
    x, y = to_number(a), to_number(b)
    return x is not None and x == y

# ----------------------------------------------------------------------------- rewards


def correct(text: str, gt: str) -> bool:
    return is_equiv(extract_answer(text), gt)


def format_reward(text: str) -> float:
    r"""B.7.2's xmlcount reward: 0.125 per tag present exactly once, 0.25 for any "\boxed{"; in [0, 0.75]."""
    if not isinstance(text, str):
        return 0.0
    tags = ("<reasoning>\n", "</reasoning>", "<answer>\n", "</answer>")
    return sum(0.125 for tag in tags if text.count(tag) == 1) + (0.25 if "\\boxed{" in text else 0.0)


def reward(text: str, gt: str) -> float:
    return CORRECT_REWARD * correct(text, gt) + format_reward(text)
