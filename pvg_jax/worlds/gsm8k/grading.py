"""GSM8K's correctness label: the final answer after `####`, compared as a number.

A solution is correct when its last `#### answer` line is the reference number
(METHOD.md's correctness). The answer is normalized before it is compared: surrounding
spaces, a `$` or `%` sign, thousands commas, a leading `+`, a trailing period and
trailing decimal zeros do not matter (`#### $1,234.50.` == 1234.5); anything else that is
not one number (an expression, words, two numbers) is no answer, so it is wrong.
"""

from __future__ import annotations

import re
from fractions import Fraction

FINAL = re.compile(r"^####[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[+-]?\.\d+")


def parse_number(text: str) -> Fraction | None:
  """The number `text` states, exactly, or None."""
  t = text.strip().rstrip(".").strip()
  t = t.removeprefix("$").removesuffix("%").strip()
  if t.startswith(("-$", "+$")):
    t = t[0] + t[2:]
  if not _NUMBER.fullmatch(t):
    return None
  return Fraction(t.replace(",", "").rstrip("."))


def final_answer(solution: str) -> Fraction | None:
  """The number on the solution's last `####` line, or None."""
  answers = FINAL.findall(solution)
  return parse_number(answers[-1]) if answers else None


def is_correct(solution: str, reference: Fraction) -> bool:
  answer = final_answer(solution)
  return answer is not None and answer == reference
