"""Simulated time-limited judges (METHOD 2): the stand-in for K's 45-second human raters.

Judges never learn from the game, so a change in their accuracy is a change in the
prover's solutions, not in the judge.

- `BudgetedChecker`: reads a solution left to right with a budget of tokens. Every clause it
  finishes reading it verifies exactly (arithmetic, grounding in the problem and in earlier
  steps, faithfulness to the problem: the step checker's rules). The first invalid clause
  it reads -> reject; a valid answer clause read within budget after valid steps ->
  accept. If the budget runs out first it must decide anyway by its stated fallback
  ("coin": a fair coin seeded by the solution text, like a rater who guesses when time is
  up; or "accept" / "reject"). Its "time" is the number of tokens it read plus the work
  of reconstructing what a clause does not show: a clause costs its words, its separator,
  and `effort[kind]` for its kind (worlds/arith/styles.py: a result-only "terse" clause
  hides its operation, a "merged" clause its intermediate result; a "full" clause shows
  everything and costs only its reading). The budget is set once from generator-written
  solutions: by default the longest canonical solution of the world, so every clean
  canonical solution fits and a longer, convoluted one does not; with
  `evals.checker_budget_share = q`, the smallest budget that at most a share q of the
  world's helpful solutions (in its style mixture) exceed, so that the budget binds.
- `ModelJudge` panel: small frozen transformers (configured sizes and seeds) trained once
  on initial-prover samples only (both roles, on verifier-split problems far from the game's
  pool), cross-entropy on same-problem (correct, incorrect) pairs. Its verdict on one
  solution is V > t, with the threshold t fixed once at training time: the one that
  maximizes balanced accuracy on its own training samples (the contrastive training fixes
  V only up to a per-problem shift, so 0 is not a calibrated cut). Cached next to the
  initial players.

"Time" and budgets count words of the solution language, which are tokens with the default
whole-number tokenizer (with `world.digits`, a number is one word but several tokens).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pathlib

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from pvg_jax import checkpoint, players, rollout
from pvg_jax.evals import classifier, measures
from pvg_jax.models import functional, sampler
from pvg_jax.models.transformer import ModelSpec
from pvg_jax.worlds.arith import checker, problems, styles
from pvg_jax.worlds.arith import world as arith_world

FALLBACKS = ("coin", "accept", "reject")
JUDGE_STREAM = 31
JUDGE_PROBLEM_OFFSET = 1_000_000   # judge data: verifier-split problems the game never uses


@dataclasses.dataclass(frozen=True)
class Verdict:
  accept: bool
  time: int          # tokens read before deciding
  finished: bool     # decided by checking (False: the budget ran out, fallback decided)


@dataclasses.dataclass(frozen=True)
class BudgetedChecker:
  budget: int
  fallback: str = "coin"
  effort: tuple[tuple[str, int], ...] = ()   # (clause kind, extra cost) pairs

  def clause_cost(self, clause: list[str]) -> int:
    """Tokens read (words and separator) plus the effort of the clause's kind."""
    return len(clause) + 1 + dict(self.effort).get(styles.clause_kind(clause), 0)

  def cost(self, words: list[str]) -> int:
    """What reading and verifying every clause of a solution costs, budget aside."""
    return sum(self.clause_cost(c) for c in checker.clauses(words))

  def __post_init__(self):
    if self.fallback not in FALLBACKS:
      raise ValueError(f"checker fallback {self.fallback!r} not in {FALLBACKS}")
    if self.budget < 1:
      raise ValueError(f"checker budget must be >= 1 token, got {self.budget}")

  def judge(self, problem: problems.Problem, words: list[str]) -> Verdict:
    result = checker.check(problem, words)
    parts = checker.clauses(words)
    time = 0
    for i, ok in enumerate(result.valid):
      # clause i costs its words and the separator (or <eos>) after it; the virtual
      # "missing answer" clause past the end costs nothing more to notice
      cost = self.clause_cost(parts[i]) if i < len(parts) else 0
      if time + cost > self.budget:
        return Verdict(self._fallback(words), self.budget, False)
      time += cost
      if not ok:
        return Verdict(False, time, True)
    return Verdict(True, time, True)

  def _fallback(self, words: list[str]) -> bool:
    if self.fallback == "coin":
      return hashlib.blake2b(" ".join(words).encode(), digest_size=1).digest()[0] % 2 == 0
    return self.fallback == "accept"


def canonical_budget(world: arith_world.ArithWorld, n: int = 512) -> int:
  """Tokens of the longest canonical solution (with its <eos>) of test problems 0..n-1."""
  longest = 0
  for p in world.problems("test", range(n)):
    words = problems.canonical_solution(p.canonical_steps(), p.answer).split()
    longest = max(longest, len(words) + 1)
  return longest


def share_budget(judge: BudgetedChecker, world: arith_world.ArithWorld, share: float,
                 n: int = 512) -> int:
  """The smallest budget that at most `share` of the world's helpful solutions of test
  problems 0..n-1 exceed (generator-written, styles drawn from the world's mixture with a
  fixed stream, so the budget depends on the world and the efforts only)."""
  rng = np.random.default_rng(JUDGE_STREAM)
  costs = np.sort([judge.cost(world.solution_text(p, arith_world.ROLE_HELPFUL, rng).split())
                   for p in world.problems("test", range(n))])
  allowed = int(np.floor(share * n))          # solutions that may exceed the budget
  return int(costs[n - 1 - allowed])


def make_checker(ev: ml_collections.ConfigDict, world: arith_world.ArithWorld) -> BudgetedChecker:
  """The judge of `config.evals`: a fixed budget, a budget that binds for a share of the
  world's solutions, or (both 0) the longest canonical solution."""
  effort = (("terse", ev.get("checker_effort_terse", 0)),
            ("merged", ev.get("checker_effort_merged", 0)))
  judge = BudgetedChecker(1, ev.checker_fallback, effort)
  if ev.checker_budget:
    budget = ev.checker_budget
  elif ev.get("checker_budget_share", 0.0) > 0:
    budget = share_budget(judge, world, ev.checker_budget_share)
  else:
    budget = canonical_budget(world)
  return dataclasses.replace(judge, budget=budget)


def checker_verdicts(judge: BudgetedChecker, world: arith_world.ArithWorld, split: str,
                     problem_index: np.ndarray, tokens: np.ndarray) -> list[Verdict]:
  probs = world.problems(split, problem_index)
  solution = tokens[:, world.layout.prompt_len:]
  return [judge.judge(p, world.tokenizer.solution_words(s)) for p, s in zip(probs, solution)]


@dataclasses.dataclass
class ModelJudge:
  name: str          # "<size>:<seed>"
  spec: ModelSpec
  params: dict
  threshold: float   # verdict: accept iff score > threshold

  def verdicts(self, world: arith_world.ArithWorld, tokens: np.ndarray) -> np.ndarray:
    return self.scores(world, tokens) > self.threshold

  def scores(self, world: arith_world.ArithWorld, tokens: np.ndarray) -> np.ndarray:
    view = world.verifier_view(tokens)
    return classifier.scores(self.spec, self.params, view, view != world.tokenizer.pad_id)


def judge_all(checker_judge: BudgetedChecker, panel: list[ModelJudge],
              world: arith_world.ArithWorld, split: str, ro) -> dict:
  """Every sample of `ro` (rollout.Rollouts) judged by the checker and the panel: their
  balanced accuracies (measures.balanced_accuracy), the checker's accuracy per class, the
  tokens it read and the share it could not finish within its budget."""
  verdicts = checker_verdicts(checker_judge, world, split, ro.problem_index, ro.tokens)
  accept = np.array([v.accept for v in verdicts])
  correct = np.asarray(ro.correct, bool)
  right = accept == correct
  out = {"accuracy": float(correct.mean()), "samples": len(correct),
         "checker": {"balanced_accuracy": measures.balanced_accuracy(accept, correct),
                     "accuracy_on_correct": float(right[correct].mean()) if correct.any()
                     else None,
                     "accuracy_on_incorrect": float(right[~correct].mean())
                     if (~correct).any() else None,
                     "time": float(np.mean([v.time for v in verdicts])),
                     "over_budget": float(np.mean([not v.finished for v in verdicts])),
                     "budget": checker_judge.budget},
         "judges": {j.name: measures.balanced_accuracy(j.verdicts(world, ro.tokens), correct)
                    for j in panel}}
  out["panel"] = float(np.mean(list(out["judges"].values()))) if panel else None
  return out


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
  """The cut t maximizing balanced accuracy of `scores > t` (midpoint between scores)."""
  labels = np.asarray(labels, bool)
  order = np.sort(np.unique(scores))
  cuts = np.concatenate([[order[0] - 1.0], (order[1:] + order[:-1]) / 2, [order[-1] + 1.0]])
  best, best_acc = 0.0, -1.0
  for t in cuts[:: max(1, len(cuts) // 2000)]:
    acc = ((scores[labels] > t).mean() + (scores[~labels] <= t).mean()) / 2
    if acc > best_acc:
      best, best_acc = float(t), acc
  return best


def parse_judge(name: str) -> tuple[str, int]:
  size, _, seed = name.partition(":")
  if not seed.isdigit():
    raise ValueError(f"judge {name!r}: expected '<size>:<seed>', e.g. 'v16k:0'")
  return size, int(seed)


def panel_key(cfg: ml_collections.ConfigDict) -> str:
  ev = cfg.evals
  parts = {"prover": players.cache_key(cfg, "prover"), "judges": list(ev.judges),
           "problems": ev.judge_problems, "per_role": ev.judge_samples_per_role,
           "steps": ev.judge_steps, "batch": ev.judge_batch, "lr": ev.judge_lr,
           "sample_batch": cfg.game.sample_batch}
  return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def model_panel(cfg: ml_collections.ConfigDict, world: arith_world.ArithWorld,
                init: players.Players, workdir: pathlib.Path, mesh: Mesh) -> list[ModelJudge]:
  """The frozen model judges, trained on initial-prover samples the first time, then read
  from <init dir>/judges_<key>/ (shared by every run with the same initial prover)."""
  ev = cfg.evals
  key = panel_key(cfg)
  directory = players.init_dir(cfg, workdir) / f"judges_{key}"
  vocab = world.tokenizer.size
  out, data = [], None
  for name in ev.judges:
    size, seed = parse_judge(name)
    spec = functional.make_spec(size, vocab, ("score",))
    path = directory / name.replace(":", "_seed")
    try:
      params, extra = checkpoint.restore(path, players.sharded_abstract(spec, mesh), key)
      threshold = float(extra["threshold"])
    except (checkpoint.CheckpointError, KeyError) as e:
      if path.exists():
        logging.warning("judge cache rejected, retraining: %s", e)
      if data is None:
        data = judge_data(cfg, world, init, directory)
      view = world.verifier_view(data.tokens)
      params = classifier.train(spec, view, view != world.tokenizer.pad_id, data.correct,
                                data.problem_index, ev.judge_steps, ev.judge_batch, ev.judge_lr,
                                seed + 1000 * JUDGE_STREAM, mesh)
      train_scores = classifier.scores(spec, params, view, view != world.tokenizer.pad_id)
      threshold = best_threshold(train_scores, data.correct)
      checkpoint.save(path, params, key, {"threshold": threshold})
    out.append(ModelJudge(name, spec, params, threshold))
  return out


def judge_data(cfg, world: arith_world.ArithWorld, init: players.Players,
               directory: pathlib.Path) -> rollout.Rollouts:
  """Initial-prover samples (both roles) on judge problems, kept in `directory`."""
  ev = cfg.evals
  path = directory / "initial_prover_samples.npz"
  if path.exists():
    with np.load(path) as f:
      return rollout.Rollouts(**{k: f[k] for k in f.files})
  index, roles = rollout.both_roles(ev.judge_problems, ev.judge_samples_per_role)
  sample_fn = sampler.make_sampler(
      init.prover_spec, solution_len=world.layout.solution_len,
      eos_id=world.tokenizer.eos_id, pad_id=world.tokenizer.pad_id, temperature=1.0)
  key = jax.random.fold_in(jax.random.key(cfg.seed), JUDGE_STREAM)
  ro = rollout.sample_rollouts(world, sample_fn, init.prover_params, "verifier",
                               index + JUDGE_PROBLEM_OFFSET, roles, key, cfg.game.sample_batch)
  rollout.save_arrays(path, dataclasses.asdict(ro))
  return ro
