r"""
The one answer grader: the RL reward and the evaluation score both call it, so a completion that earns
the correctness reward in training is exactly one that counts as right in evaluation.

    extract_answer(text)   the LAST box with something in it, \boxed{...} (also \boxed 5, \fbox{...}, and
                           "boxed{...}" without its backslash); \boxed{\boxed{x}} gives x. No such box: the
                           last <answer>...</answer>, else the rest of the line after a box never closed,
                           else the last "#### X", else the last "The answer is X", each read with empty
                           boxes and unclosed box openings cut out ("\boxed{} 18" reads "18"). Else None.
    normalize(ans)         Hendrycks-MATH-style string cleanup (tfrac/dfrac, \left/\right, units, ...)
    is_equiv(pred, gt)     normalized strings equal, or both are numbers with the same exact value, or gt is
                           a number and pred is plain words around that one number ("16 hours", "$18 a day")
    reward(text, gt)       3.0 * correct + format_reward, the scale of IGPO.md B.7.2

Numbers are compared exactly with fractions.Fraction, so "72" = "72.0", "1,000" = "1000" and "\frac12" =
"0.5" = "1/2"; the official is_equiv compares strings only and marks "72.0" wrong against "72" (B.7.2).
Unlike the official code (IGPO.md B.10.15), which rewards the FIRST box in training but scores the LAST box
in evaluation, there is ONE rule here: the last box, for both. The fallbacks are those of d1's evaluation
parser (dllm-reasoning/d1 eval/parse_and_get_acc.py, which produced the literature's LLaDA numbers) where
they are right: an answer in <answer> tags without a box, a unit in the box, an empty box then the number, a
nested box. Where d1 reads a wrong number (the "6" of "6,277", the "14" of "\frac14", the "2" of "x^2") this
grader does not. Grading never raises, whatever the completion: a malformed one simply scores 0.

The official reward is here too, as a choice for training and for comparison: official_reward(text, gt)
grades the first box only, by string equality after the official normalisation (last section).
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


# "\boxed", "\fbox", and "boxed{" without its backslash (LLaDA writes "<answer>\nboxed{4}\n</answer>")
BOX = re.compile(r"(?:\\(?:boxed|fbox)(?![a-zA-Z])|(?<![a-zA-Z\\])boxed(?=\{))(\s*)")
WORD = re.compile(r"[^\s$]+")  # the answer of "\boxed 5"
SPACE = re.compile(r"\s*")
# what the fallbacks cut: an empty box ("\boxed{}", "\boxed{...}") or the opening of one never closed
LEFTOVER_BOX = re.compile(r"(?:\\(?:boxed|fbox)(?![a-zA-Z])|(?<![a-zA-Z\\])boxed)\s*\{(?:[\s.]*\})?")


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
    r"""Every outermost well-formed box as (start, end, content), left to right; content that is itself
    one box is unwrapped, so \boxed{\boxed{5}} has content "5". A box whose braces never close (a truncated
    generation) is skipped, so the fallbacks still get their turn. Linear in len(text): positions only move
    forward and no slice is taken until a box is found."""
    found, pos, pairs = [], 0, None
    while (m := BOX.search(text, pos)):
        i = pos = m.end()
        if text.startswith("{", i):
            pairs = brace_pairs(text) if pairs is None else pairs
            if i in pairs:
                a, b = i + 1, pairs[i]  # the content is text[a:b]
                while (inner := BOX.match(text, SPACE.match(text, a).end())) and inner.end() < b:
                    j, last = inner.end(), b - 1
                    while last > j and text[last].isspace():
                        last -= 1
                    if pairs.get(j) != last:  # not one box filling the content, just some box in it
                        break
                    a, b = j + 1, last
                found.append((m.start(), pairs[i] + 1, text[a:b]))
                pos = pairs[i] + 1
        elif m.group(1) and (w := WORD.match(text, i)):  # "\boxed 5": needs the space
            found.append((m.start(), w.end(), w.group().rstrip(".")))
            pos = w.end()
    return found


def strip_final(s: str) -> str | None:
    # what follows "####" or "The answer is": the rest of its line, without a trailing "." or "$"
    s = s.split("\n")[0].strip().lstrip(":$ ").rstrip(" .$")
    return s or None


def answer_tags(text: str) -> str | None:
    """The content of the last complete <answer>...</answer>, stripped; None if there is none or it is empty.
    rfind, not a regex: on "<answer>" * 10**5 with no closing tag, `<answer>(.*?)</answer>` is quadratic."""
    end = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, max(end, 0))
    if end < 0 or start < 0:
        return None
    return text[start + len("<answer>"):end].strip() or None


def extract_answer(text: str) -> str | None:
    if not isinstance(text, str):
        return None
    answers = [c.strip() for _, _, c in boxes(text) if c.strip(" .\t\n")]  # "\boxed{}", "\boxed{...}": blank
    if answers:
        return answers[-1]
    # no box with an answer: read the rest with blank and unclosed boxes cut out, as d1 reads the last number
    # inside <answer>: "\boxed{}101" and a "\boxed{160" that never closes both hold an answer
    if (inside := answer_tags(LEFTOVER_BOX.sub("", text))) is not None:
        return inside
    opened = [m.end() for m in BOX.finditer(text) if text.startswith("{", m.end())]
    pairs = brace_pairs(text) if opened else {}
    unclosed = [i for i in opened if i not in pairs]
    if unclosed:  # no answer tags either: "is \boxed{360\text{ hours} hours.\n" gives the rest of its line
        return strip_final(LEFTOVER_BOX.sub("", text[unclosed[-1] + 1:]).lstrip())
    text = LEFTOVER_BOX.sub("", text)
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
                     ("\\ ", " "), ("^{\\circ}", ""), ("^\\circ", ""), ("°", ""), ("\\$", ""), ("$", ""),
                     ("\u2212", "-")]:  # U+2212, the typographic minus sign
        s = s.replace(old, new)
    # a trailing unit, e.g. "5.4 \text{ cents}", "864 \mbox{ inches}^2", "6\pi \text{ cm}"; not a whole
    # answer ("\text{east}") nor one in a superscript ("10^{\text{th}}")
    s = re.sub(r"(?<=[^\s{^_])(\s*\\(?:text|mbox)\{[^{}]*\}(\^\{?\d\}?)?)+\s*$", "", s)
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


# Plain words around one number: which words may stand next to it without changing its value. A unit or a
# noun may ("16 hours", "800 ml", "5 changes/day", "Juice Box C is 2 dollars more"); these may not:
BOUNDS = {  # right before the number, they make it a bound or flip it: "more than 18" is not 18
    "than", "least", "most", "not", "no", "never", "over", "under", "above", "below", "beyond", "within",
    "nearly", "almost", "except", "minus", "negative", "plus"}
SCALES = {  # anywhere after it, they scale it: "1 million" is not 1, "5 squared" is not 5, "2 pi" is not 2
    "hundred", "thousand", "million", "billion", "trillion", "dozen", "squared", "cubed", "pi", "halves",
    "factorial", "half", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "hundredth", "thousandth"}
PROSE = re.compile(r"[A-Za-z0-9\s.,;:!?'\"()$%/+*=#-]*")  # no LaTeX, no ^ _ { } < >: "x^2" is not prose
NUM = re.compile(r"-?(?:(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+)(?:\.\d+)?|\.\d+)(?:/\d+)?")
# a fraction of integers: \frac{3}{4}, \dfrac34 (one digit each unbraced), not the 1/2 of a mixed 2\frac{1}{2}
FRAC = re.compile(r"(?<![\d}])\\[dt]?frac\s*(?:\{\s*(-?\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))")


def prose_number(ans: str) -> str | None:
    """The number a plain-words answer gives, "18" for "16 + 2 = 18 apples", "$18 per day" or "\\$18"; None
    unless the answer (after its last "=", when it is arithmetic) holds exactly one number, with no maths
    markup, no digit touching a letter ("2x"), no single-letter word next to it ("2 x"; "a" and "I" are
    words), no BOUNDS word right before it and no SCALES word after it. This is d1's number-with-a-unit
    fallback, made safe: d1 takes the first number in the box, so it reads \\boxed{x^2} as 2."""
    s = re.sub(r"\\(?:text|mbox|textbf|mathbf|mathrm)\{([^{}]*)\}", r" \1 ", ans)  # "16\text{ h}" -> "16 h"
    s = FRAC.sub(lambda m: f"{m[1] or m[2]}/{m[3] or m[4]} ", s)  # "\frac34 cup" -> "3/4 cup"
    for old, new in [("\\$", "$"), ("\\%", "%"), ("{,}", ","), ("\\,", " "), ("\\ ", " "), ("\\!", ""),
                     ("\u2212", "-"), ("-$", "$-"), ("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"),
                     ("^{\\circ}", ""), ("^\\circ", ""), ("°", "")]:
        s = s.replace(old, new)
    if not PROSE.fullmatch(s) or re.search(r"[A-Za-z]\d|\d[A-Za-z]", s):
        return None
    s = s.rsplit("=", 1)[-1]  # "5 + 13 = 18": the result
    nums = NUM.findall(s)
    if len(nums) != 1 or re.search(r"\d", NUM.sub(" ", s)):  # "1,2" or "2:00" leave digits behind
        return None
    before, after = s.split(nums[0], 1)
    words_before, words_after = re.findall(r"[A-Za-z]+", before), re.findall(r"[A-Za-z]+", after)
    if any(len(w) == 1 and w not in "aAI" for w in words_before[-1:] + words_after[:1]):
        return None  # a variable next to it: "2 x", "x 2"
    if words_before and words_before[-1].lower() in BOUNDS:
        return None
    if any(w.lower() in SCALES or w.lower().rstrip("s") in SCALES for w in words_after):
        return None
    return nums[0]


def is_equiv(pred: str | None, gt: str | None) -> bool:
    if not isinstance(pred, str) or not isinstance(gt, str):
        return False
    a, b = normalize(pred), normalize(gt)
    if a == "" or b == "":
        return False
    if a == b:
        return True
    x, y = to_number(a), to_number(b)
    if y is not None and x is None and (words := prose_number(pred)) is not None:
        x = to_number(words)  # "16 hours" against 16: words are read only when the reference is a number
    return y is not None and x == y

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

# ----------------------------------------------------------------------------- the official reward
# IGPO's own correctness reward (facebookresearch/igpo utils/reward_func.py correctness_reward_func, IGPO.md
# B.7.2), rewritten here to behave the same: the FIRST "\boxed{" only, its content unwrapped once more by
# the official last-box helpers, then string equality after the official normalisation. It is a choice
# for training (the default, reward() above, grades what evaluation grades); evaluation never uses it.


def official_strip(s: str) -> str | None:
    r"""The official normalisation (Hendrycks' MATH strip_string as utils/parser_helper.py has it), step for
    step, quirks included ("\sqrt 3" becomes "\sqrt{}3"); None where the official code raises (two
    "\text{ " units, a "\sqrt" or "\frac" at the very end, "a/b" with a non-integer side), and then the
    official is_equiv compares the raw strings instead."""
    for old, new in [("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"), ("dfrac", "frac"),
                     ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\$", "")]:
        s = s.replace(old, new)
    if "\\text{ " in s:  # a unit on the right: everything from "\text{ " on goes
        parts = s.split("\\text{ ")
        if len(parts) != 2:
            return None
        s = parts[0]
    s = s.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if s.startswith("."):
        s = "0" + s
    if len(sides := s.split("=")) == 2 and len(sides[0]) <= 2:  # "k = 7" -> " 7", spaces go below
        s = sides[1]
    head, *rest = s.split("\\sqrt")  # \sqrt3 -> \sqrt{3}: the one character after \sqrt gets braces
    if any(p == "" for p in rest):
        return None
    s = head + "".join("\\sqrt" + (p if p[0] == "{" else "{" + p[0] + "}" + p[1:]) for p in rest)
    s = s.replace(" ", "")
    head, *rest = s.split("\\frac")
    fixed = [head]
    for p in rest:
        if p == "":
            return None
        if p[0] == "{":
            fixed.append("\\frac" + p)
        elif len(p) < 2:  # "\frac1" at the very end: the official code gives up and keeps the string
            fixed = [s]
            break
        elif p[1] == "{":  # \frac1{2} -> \frac{1}{2}
            fixed.append("\\frac{" + p[0] + "}" + p[1:])
        else:  # \frac12 -> \frac{1}{2}
            fixed.append("\\frac{" + p[0] + "}{" + p[1] + "}" + p[2:])
    s = "".join(fixed)
    s = "\\frac{1}{2}" if s == "0.5" else s
    if len(sides := s.split("/")) == 2:  # "3/4" -> "\frac{3}{4}"; int() raising is the official behaviour
        try:
            a, b = int(sides[0]), int(sides[1])
        except ValueError:
            return None
        s = f"\\frac{{{a}}}{{{b}}}" if s == f"{a}/{b}" else s
    return s


def official_equiv(pred: str, gt: str) -> bool:
    a, b = official_strip(pred), official_strip(gt)
    return pred == gt if a is None or b is None else a == b


BRACE = re.compile(r"[{}]")


def closing_brace(s: str, i: int, depth: int) -> int:
    """Where the official brace counting, from s[i] on at `depth`, meets a "}" that brings it to 0; -1 if
    it never does. Only braces are visited, so a long text costs one regex scan."""
    for m in BRACE.finditer(s, i):
        depth += 1 if m.group() == "{" else -1
        if depth == 0 and m.group() == "}":
            return m.start()
    return -1


def official_answer(text: str) -> str | None:
    r"""What the official reward compares with the reference: the content of the first "\boxed{" (stripped;
    "" when there is none or its braces never close), passed through the official last_boxed_only_string
    and remove_boxed, which unwrap a box inside it (\boxed{\boxed{5}} gives "5"); None where those raise.
    If that leaves nothing, the first <answer>...</answer> inside the box's content, as the official code
    searches the already-extracted string."""
    start = text.find("\\boxed{")
    end = closing_brace(text, start + len("\\boxed{"), 1) if start >= 0 else -1
    content = text[start + len("\\boxed{"):end].strip() if end >= 0 else ""
    k = content.rfind("\\boxed")
    k = k if k >= 0 else content.rfind("\\fbox")
    if "\\boxed " in content:  # "\boxed 5": the rest after the last "\boxed ", up to a "$"
        parsed = content.split("\\boxed ")[-1].split("$")[0]
    elif k < 0:  # no box inside: the content itself
        parsed = content
    elif (close := closing_brace(content, k, 0)) < 0:
        parsed = None  # the official code raises here
    else:
        box = content[k:close + 1]
        parsed = box[len("\\boxed{"):-1] if box.startswith("\\boxed{") else box
    if not parsed and (a := content.find("<answer>")) >= 0 and (b := content.find("</answer>", a)) >= 0:
        parsed = content[a + len("<answer>"):b].strip()
    return parsed


def official_correct(text: str, gt: str) -> bool:
    if not isinstance(text, str) or not isinstance(gt, str):
        return False
    parsed = official_answer(text)
    return parsed is not None and official_equiv(parsed, gt)


def official_reward(text: str, gt: str) -> float:
    """IGPO's training reward: 3.0 for a correct first box (official_correct) + the xmlcount format reward,
    which is exactly format_reward; in [0, 3.75]."""
    return CORRECT_REWARD * official_correct(text, gt) + format_reward(text)
