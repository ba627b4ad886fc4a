"""The arith world as the game sees it: problems, prompts, solutions, grading, in arrays.

`ArithWorld` bundles the generator spec, the tokenizer and the sequence layout built from
`config.world`, and turns problem indices into the fixed-shape int32 arrays that the jitted
steps consume. Everything is a pure function of (seed, split, index) and the explicit
`np.random.Generator` passed in, never of global state.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import ml_collections
import numpy as np

from pvg_jax.worlds.arith import checker, flaws, problems, styles, tokenizer

ROLE_HELPFUL, ROLE_SNEAKY = 0, 1


@dataclasses.dataclass(frozen=True)
class Batch:
  """Token sequences in the shared layout (see tokenizer.py).

  tokens:   [B, T] int32, T = prompt_len + solution_len.
  kv_mask:  [B, T] bool, True on non-pad tokens (what attention may look at).
  loss_mask:[B, S] bool over the solution columns (the last S = solution_len of T): True
            on solution tokens up to and including <eos> (the tokens a prover emits).
  """

  tokens: np.ndarray
  kv_mask: np.ndarray
  loss_mask: np.ndarray


class ArithWorld:
  """Problems and their token arrays for one `config.world`."""

  def __init__(self, cfg: ml_collections.ConfigDict, seed: int):
    self.spec = problems.WorldSpec(
        min_start=cfg.min_start, max_start=cfg.max_start, min_steps=cfg.min_steps,
        max_steps=cfg.max_steps, start_range=tuple(cfg.start_range),
        times_range=tuple(cfg.times_range), add_range=tuple(cfg.add_range),
        max_value=cfg.max_value, operations=tuple(cfg.operations),
        p_ref_previous=cfg.p_ref_previous, max_distractors=cfg.max_distractors,
        p_distractor=cfg.p_distractor)
    if cfg.max_number < 2 * cfg.max_value:
      raise ValueError(f"world.max_number={cfg.max_number} must be >= 2 * world.max_value "
                       f"({2 * cfg.max_value}) so flawed values stay writable")
    self.styles = tuple(cfg.get("styles", ("full",)))
    self.style_weights = tuple(cfg.get("style_weights", (1.0,) * len(self.styles)))
    styles.validate(self.styles, self.style_weights)
    self.cfg = cfg
    self.seed = seed
    self.tokenizer = tokenizer.Tokenizer(cfg.max_number, cfg.digits)
    self.layout = tokenizer.layout_for(
        self.spec, self.tokenizer,
        cfg.solution_slack + styles.extra_words(self.styles, self.spec.max_steps))

  def problem(self, split: str, index: int) -> problems.Problem:
    return problems.generate(self.spec, self.seed, split, index)

  def problems(self, split: str, indices: Sequence[int]) -> list[problems.Problem]:
    return [self.problem(split, int(i)) for i in indices]

  def solution_text(self, problem: problems.Problem, role: int,
                    rng: np.random.Generator) -> str:
    """Helpful: the canonical steps; sneaky: flaw-injected ones; either written in a style
    drawn from world.styles (styles.py; no draw with a single style)."""
    style = styles.draw(self.styles, self.style_weights, rng)
    if role == ROLE_HELPFUL:
      return styles.render(problem, problem.canonical_steps(), problem.answer, style)
    flawed = flaws.inject(problem, rng, max_number=self.cfg.max_number,
                          p_arith=self.cfg.p_arith_flaw, max_delta=self.cfg.max_flaw_delta)
    return styles.render(problem, flawed.steps, flawed.answer, style)

  def prompts(self, probs: Sequence[problems.Problem], roles: Sequence[int]) -> np.ndarray:
    """[B, prompt_len] left-padded prompts with the given roles."""
    return np.stack([tokenizer.encode_prompt(self.tokenizer, self.layout, p,
                                             tokenizer.ROLES[r]) for p, r in zip(probs, roles)])

  def sequences(self, prompts: np.ndarray, solutions: np.ndarray) -> Batch:
    """Joins [B, P] prompts and [B, S] solutions into the shared layout."""
    tokens = np.concatenate([prompts, solutions], axis=1)
    kv_mask = tokens != self.tokenizer.pad_id
    return Batch(tokens.astype(np.int32), kv_mask,
                 solution_mask(solutions, self.tokenizer.eos_id))

  def sft_batch(self, split: str, indices: Sequence[int], roles: Sequence[int],
                rng: np.random.Generator) -> Batch:
    """Role-conditioned SFT data: helpful -> canonical, sneaky -> flaw-injected."""
    return self.solution_batch(self.problems(split, indices), roles, rng)

  def solution_batch(self, probs: Sequence[problems.Problem], roles: Sequence[int],
                     rng: np.random.Generator) -> Batch:
    """Generator-written solutions (canonical or flaw-injected by role) of `probs`."""
    sols = np.stack([tokenizer.encode_solution(self.tokenizer, self.layout,
                                               self.solution_text(p, r, rng))
                     for p, r in zip(probs, roles)])
    return self.sequences(self.prompts(probs, roles), sols)

  def verifier_view(self, tokens: np.ndarray) -> np.ndarray:
    """The verifier's input: the same sequence with the role token replaced by <verify>."""
    out = np.array(tokens, copy=True)
    out[:, self.layout.role_column] = self.tokenizer.ids[tokenizer.VERIFY]
    return out

  def other_role_view(self, tokens: np.ndarray) -> np.ndarray:
    """The same sequences with the role token swapped (helpful <-> sneaky)."""
    out = np.array(tokens, copy=True)
    col, ids = self.layout.role_column, self.tokenizer.ids
    helpful = out[:, col] == ids[tokenizer.HELPFUL]
    out[:, col] = np.where(helpful, ids[tokenizer.SNEAKY], ids[tokenizer.HELPFUL])
    return out

  def check(self, problem: problems.Problem, solution_ids) -> checker.CheckResult:
    return checker.check(problem, self.tokenizer.solution_words(solution_ids))

  def display(self, problem: problems.Problem, solution_ids) -> tuple[str, list[str]]:
    """What a human judge reads: the problem as sentences and the solution one clause per
    line, with exactly the words the checker reads (only spacing and capitals change)."""
    return display_problem(problem.text()), display_solution(
        self.tokenizer.solution_words(solution_ids))


def display_problem(text: str) -> str:
  """'ann has 4 apples . how many apples does ann have ?' -> 'Ann has 4 apples. How many
  apples does ann have?' (sentence case; names stay as the solution writes them)."""
  sentences = re.findall(r"\s*([^.?]+?)\s*([.?])", text)
  return " ".join(body[0].upper() + body[1:] + end for body, end in sentences)


def display_solution(words: Sequence[str]) -> list[str]:
  """Solution words split into one line per clause at the ';' separators."""
  lines, current = [], []
  for w in words:
    if w == ";":
      lines.append(" ".join(current))
      current = []
    else:
      current.append(w)
  if current or not lines:
    lines.append(" ".join(current))
  return lines


def solution_mask(solutions: np.ndarray, eos_id: int) -> np.ndarray:
  """[B, S] True up to and including the first <eos> of each row (all True if none)."""
  is_eos = solutions == eos_id
  before = np.cumsum(is_eos, axis=1) - is_eos
  return before == 0
