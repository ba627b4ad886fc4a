"""Quote verification: what the judge is told about each quote of an argument.

An argument marks quotes as `<q> words </q>`. A quote is *verified* iff its words are one
contiguous run of the passage's words, verbatim and non-empty; anything else is
*unverified*. The judge's view replaces each `<q>` by `<qv>` or `<qu>` (mode "flag"), or
keeps only `<qu>` for an unverified quote and drops its words (mode "remove").

Two failure modes of looser checkers are closed by the one rule above (tests/test_debate.py):
- a paraphrase inside quote marks ("paris is where ann lives") is not a run of the passage;
- fragments joined by an ellipsis ("ann ... owns a cat" from "ann likes red . eve owns a
  cat") are each verbatim, but the joined quote is not one run, so it is unverified: a
  checker that verifies fragments separately would certify a claim the passage never makes.
A quote left open at the end of the argument is checked like a closed one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

MODES = ("flag", "remove")


@dataclasses.dataclass(frozen=True)
class Quote:
  start: int            # index of the <q> token
  end: int              # index one past the last word (the </q>, or the argument's end)
  words: tuple          # the quoted tokens
  verified: bool


def contains_run(passage: Sequence, words: Sequence) -> bool:
  """Whether `words` (non-empty) occur as one contiguous run of `passage`."""
  n = len(words)
  if n == 0 or n > len(passage):
    return False
  words = tuple(words)
  return any(tuple(passage[i:i + n]) == words for i in range(len(passage) - n + 1))


def find(argument: Sequence, passage: Sequence, open_tok, close_tok) -> list[Quote]:
  """Every quote of `argument` (a token sequence that ends where the argument ends), with
  its verdict against `passage`. Quotes do not nest: a <q> inside a quote is a word."""
  out, i = [], 0
  while i < len(argument):
    if argument[i] != open_tok:
      i += 1
      continue
    j = i + 1
    while j < len(argument) and argument[j] != close_tok:
      j += 1
    words = tuple(argument[i + 1:j])
    out.append(Quote(i, j, words, contains_run(passage, words)))
    i = j + 1
  return out


def judge_view(argument: Sequence, passage: Sequence, open_tok, close_tok, verified_tok,
               unverified_tok, mode: str = "flag") -> list:
  """The argument as the judge sees it (module docstring)."""
  if mode not in MODES:
    raise ValueError(f"quote mode {mode!r}: expected one of {MODES}")
  out, last = [], 0
  for q in find(argument, passage, open_tok, close_tok):
    out.extend(argument[last:q.start])
    if q.verified or mode == "flag":
      out.append(verified_tok if q.verified else unverified_tok)
      out.extend(argument[q.start + 1:q.end + 1])       # words and the </q>, if any
    else:
      out.append(unverified_tok)
      out.extend(argument[q.end:q.end + 1])             # the </q> only
    last = q.end + 1
  out.extend(argument[last:])
  return out
