"""
AMC (the AI-MO "aimo-validation-amc" set, via agentica-project/deepscaler): 83 AMC 12 problems from 2022
and 2023, test only. The file is one JSON array; answers are floats (142.0), turned into "142" so the
SFT target does not box a spurious ".0". No solutions, so trace and hint are ''. One instance:

    {"question": "$\\frac{m}{n}$ is the Irreducible fraction value of
                  \\[3+\\frac{1}{3+\\frac{1}{3+\\frac13}}\\], what is the value of $m+n$?",
     "trace": "", "answer": "142",
     "id": "https://artofproblemsolving.com/wiki/index.php/2022_AMC_12A_Problems/Problem_1"}
"""
from data.files import correct, hint, prompt, reward, target  # noqa: F401 (the task interface)
from data.files import need, number, records

FILES = {"test": "amc_test.json"}


def load(split: str, path=None) -> list[dict]:
    return [{"question": need(row, "problem", where), "trace": "",
             "answer": number(need(row, "answer", where, (int, float))), "id": row.get("url", where)}
            for where, row in records(FILES, split, path)]
