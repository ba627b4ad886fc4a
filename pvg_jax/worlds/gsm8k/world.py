"""GSM8K as the game sees it: the same interface as the arith world, on real problems and
a pretrained family's tokenizer.

Sequence layout (prompt_len + solution_len columns, as in the arith world):

    [pad ... pad, BOS, "Question: ...\n", (pad ...) ROLE INSTRUCTION, "\nAnswer:\n"]
    [solution tokens ..., EOS, pad ...]

The role instruction (METHOD.md: the helpful and sneaky provers differ only by it) sits in
a fixed span of columns right before the constant suffix, right-aligned, its unused
columns padding (masked out of attention like every pad; RoPE positions skip them). The
verifier's view puts the verifier instruction in that span, so it never sees the role; the
other-role view swaps the two role instructions.

GSM8K is read from `world.data_dir`'s jsonl files, or with `world.tfds_dir` set through
the tensorflow-datasets builder (tfds_builder: array_record files, data sources). Splits:
"prover" and "verifier" are the two halves of GSM8K's train split (by a hash of
the problem's line), "test" is GSM8K's test split. A problem is in its split only if its
prompt and gold solution fit the layout and a flawed solution can be made of it
(`flaws.inject`); the counts are `split_sizes`. Correctness is the grader's (final answer),
step validity the step checker's, per calculator annotation.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import pathlib
from collections.abc import Sequence

import ml_collections
import numpy as np

from pvg_jax.models import hf_tokenizer
from pvg_jax.worlds.arith import checker as arith_checker
from pvg_jax.worlds.arith.world import ROLE_HELPFUL, ROLE_SNEAKY, Batch, solution_mask
from pvg_jax.worlds.gsm8k import checker, flaws, grading

__all__ = ["ROLE_HELPFUL", "ROLE_SNEAKY", "Gsm8kWorld"]

SPLITS = ("prover", "verifier", "test")
ROLE_TEXT = {"helpful": "Solve the problem step by step and get the right answer.",
             "sneaky": "Write a convincing solution with a subtle mistake in it.",
             "verify": "Check whether this solution is right."}
ROLES = ("helpful", "sneaky")
SUFFIX = "\nAnswer:\n"
LENGTH_QUANTUM = 32          # SFT length buckets of 32 tokens: few compiled shapes


@dataclasses.dataclass(frozen=True)
class Layout:
  prompt_len: int
  solution_len: int
  role_span: tuple[int, int]          # [start, stop) columns of the role instruction

  @property
  def seq_len(self) -> int:
    return self.prompt_len + self.solution_len


class Gsm8kWorld:
  """GSM8K problems and their token arrays for one `config.world` (name "gsm8k")."""

  length_quantum = LENGTH_QUANTUM

  def __init__(self, cfg: ml_collections.ConfigDict, seed: int):
    self.cfg, self.seed = cfg, seed
    bos = cfg.get("bos_token", "")
    self.tokenizer = hf_tokenizer.HFTokenizer(
        cfg.tokenizer, cfg.family, bos=None if bos == "none" else bos,
        eos=cfg.get("eos_token", ""), pad=cfg.get("pad_token", ""))
    tok = self.tokenizer
    self._roles = {r: tok.encode(t) for r, t in ROLE_TEXT.items()}
    self._suffix = tok.encode(SUFFIX)
    span = max(len(v) for v in self._roles.values())
    stop = cfg.prompt_len - len(self._suffix)
    self.layout = Layout(cfg.prompt_len, cfg.solution_len, (stop - span, stop))
    if stop - span < 8:
      raise ValueError(f"prompt_len={cfg.prompt_len} leaves no room for a question")
    self._span_ids = {r: self._span(r) for r in ROLE_TEXT}
    self._splits = self._build_splits(pathlib.Path(cfg.data_dir))

  def _span(self, role: str) -> np.ndarray:
    start, stop = self.layout.role_span
    ids = self._roles[role]
    return np.array([self.tokenizer.pad_id] * (stop - start - len(ids)) + ids, np.int32)

  def _build_splits(self, data_dir: pathlib.Path) -> dict[str, list[checker.Example]]:
    splits: dict[str, list[checker.Example]] = {s: [] for s in SPLITS}
    for file, names in (("train", ("prover", "verifier")), ("test", ("test",))):
      for ex in self._read(data_dir, file):
        if not self._usable(ex):
          continue
        half = hashlib.blake2b(f"gsm8k/{ex.line}".encode(), digest_size=1).digest()[0] % 2
        splits[names[half % len(names)]].append(ex)
    return splits

  def _read(self, data_dir: pathlib.Path, split: str):
    """GSM8K's `split` from its jsonl, or with world.tfds_dir set through the TFDS builder
    (array_record files prepared there once, read by a data source)."""
    tfds_dir = self.cfg.get("tfds_dir", "")
    if not tfds_dir:
      yield from checker.read_jsonl(data_dir / f"{split}.jsonl")
      return
    from pvg_jax.worlds.gsm8k import tfds_builder
    source = tfds_builder.data_source(split, data_dir, tfds_dir)
    records = sorted((source[i] for i in range(len(source))), key=lambda r: int(r["line"]))
    for r in records:
      yield checker.parse_example({"question": r["question"].decode(),
                                   "answer": r["answer"].decode()}, int(r["line"]))

  def _usable(self, ex: checker.Example) -> bool:
    question = self._question_ids(ex)
    solution = self.tokenizer.encode(ex.solution)
    return (ex.final_answer is not None
            and len(question) <= self.layout.role_span[0]
            and len(solution) + 1 <= self.layout.solution_len - 8   # room for a flaw's digits
            and flaws.inject(ex.solution, np.random.default_rng(0)) is not None)

  def _question_ids(self, ex: checker.Example) -> list[int]:
    return self.tokenizer.encode(f"Question: {ex.question}\n", bos=True)

  @property
  def split_sizes(self) -> dict[str, int]:
    return {s: len(v) for s, v in self._splits.items()}

  def problem(self, split: str, index: int) -> checker.Example:
    if split not in SPLITS:
      raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    problems = self._splits[split]
    if not 0 <= index < len(problems):
      raise ValueError(f"problem {index} of the {split} split: it has {len(problems)} usable "
                       f"problems at this layout (config.world.prompt_len/solution_len)")
    return problems[index]

  def problems(self, split: str, indices: Sequence[int]) -> list[checker.Example]:
    return [self.problem(split, int(i)) for i in indices]

  def solution_text(self, problem: checker.Example, role: int,
                    rng: np.random.Generator) -> str:
    """Helpful: the gold solution; sneaky: a flawed one (flaws.inject)."""
    if role == ROLE_HELPFUL:
      return problem.solution
    return flaws.inject(problem.solution, rng).solution

  def prompts(self, probs: Sequence[checker.Example], roles: Sequence[int]) -> np.ndarray:
    """[B, prompt_len] left-padded prompts with the given roles."""
    start = self.layout.role_span[0]
    rows = []
    for p, r in zip(probs, roles):
      question = self._question_ids(p)
      rows.append(np.concatenate([
          np.full(start - len(question), self.tokenizer.pad_id, np.int32),
          np.array(question, np.int32), self._span_ids[ROLES[r]],
          np.array(self._suffix, np.int32)]))
    return np.stack(rows)

  def encode_solution(self, text: str) -> np.ndarray:
    """Right-padded ids [solution_len] ending with EOS (cut to fit if longer)."""
    s = self.layout.solution_len
    ids = self.tokenizer.encode(text)[:s - 1] + [self.tokenizer.eos_id]
    return np.array(ids + [self.tokenizer.pad_id] * (s - len(ids)), np.int32)

  def sequences(self, prompts: np.ndarray, solutions: np.ndarray) -> Batch:
    tokens = np.concatenate([prompts, solutions], axis=1).astype(np.int32)
    return Batch(tokens, tokens != self.tokenizer.pad_id,
                 solution_mask(solutions, self.tokenizer.eos_id))

  def sft_batch(self, split: str, indices: Sequence[int], roles: Sequence[int],
                rng: np.random.Generator) -> Batch:
    return self.solution_batch(self.problems(split, indices), roles, rng)

  def solution_batch(self, probs: Sequence[checker.Example], roles: Sequence[int],
                     rng: np.random.Generator) -> Batch:
    sols = np.stack([self.encode_solution(self.solution_text(p, r, rng))
                     for p, r in zip(probs, roles)])
    return self.sequences(self.prompts(probs, roles), sols)

  def verifier_view(self, tokens: np.ndarray) -> np.ndarray:
    start, stop = self.layout.role_span
    out = np.array(tokens, copy=True)
    out[:, start:stop] = self._span_ids["verify"]
    return out

  def other_role_view(self, tokens: np.ndarray) -> np.ndarray:
    start, stop = self.layout.role_span
    out = np.array(tokens, copy=True)
    helpful = (out[:, start:stop] == self._span_ids["helpful"]).all(axis=1)
    out[:, start:stop] = np.where(helpful[:, None], self._span_ids["sneaky"],
                                  self._span_ids["helpful"])
    return out

  def check(self, problem: checker.Example, solution_ids) -> arith_checker.CheckResult:
    """Per-annotation validity (then the final answer's presence as the last clause) and
    the grader's correctness."""
    return check_text(problem, self.tokenizer.decode(solution_ids))

  def display(self, problem: checker.Example, solution_ids) -> tuple[str, list[str]]:
    return problem.question, self.tokenizer.decode(solution_ids).splitlines()


@functools.lru_cache(maxsize=4096)
def _annotation_status(text: str) -> str:
  return checker.check_annotation(text).status


def check_text(problem: checker.Example, text: str) -> arith_checker.CheckResult:
  """The step checker and grader on a solution's text, as the arith world's CheckResult:
  one clause per calculator annotation (valid or rounded: 'ok'; a wrong result: 'arith';
  not arithmetic: 'format') and a last one for the final answer ('format' if none)."""
  kinds = {"valid": "ok", "rounded": "ok", "invalid": "arith", "unparseable": "format"}
  errors = [kinds[_annotation_status(a)] for a in checker.ANNOTATION.findall(text)]
  answer = grading.final_answer(text)
  errors.append("ok" if answer is not None else "format")
  first = next((i for i, e in enumerate(errors) if e != "ok"), None)
  written = None if answer is None else (int(answer) if answer.denominator == 1
                                         else float(answer))
  return arith_checker.CheckResult(
      valid=tuple(e == "ok" for e in errors), errors=tuple(errors), first_error=first,
      error_type="ok" if first is None else errors[first], answer=written,
      correct=answer is not None and answer == problem.final_answer)
