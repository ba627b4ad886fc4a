"""Evaluate a game's workdir: every measure of METHOD 1.3, each cached and resumable.

    pvg-eval --workdir runs/arith              (python -m pvg_jax.evals.run ...)

reads the workdir's config.json, summary.json, snapshots/ and rollouts/ and writes
<workdir>/evals/:

    dynamics.json         per round, per PPO step: verifier score of helpful/sneaky x
                          correct/incorrect samples, and both roles' accuracy (K Fig. 5)
    legibility/*.json     per prover (the initial one and every snapshot): helpful accuracy
                          on test problems and the judges' accuracy on K's balanced pick
                          (K Fig. 4, 8); and under "fixed", every helpful and every
                          sneaky sample of the same test problems judged (balanced
                          accuracy, the checker's tokens read and over-budget share)
    attacks/*.json        sneaky-only attacks on V_init and every round's verifier, with
                          their per-step curves (K Fig. 6a; survival curves in the report)
    best_of_n.json        balanced best-of-n of every verifier on initial-prover samples
                          (K Fig. 6b)
    flaws.json            exact step validity of sneaky-incorrect test solutions (K Fig. 7a)
    separability.json     ROC-AUC of a tiny helpful-vs-sneaky classifier, by round
    crossplay.json        every verifier on every prover's samples (pairwise accuracy and
                          the sneaky role's fool rate)
    styles/*.json         per prover, per solution style of the legibility samples (styled
                          worlds): share, accuracy, the checker's over-budget share
    results.json          all of the above, with the game's summary, for the report

Each part is skipped when its file exists and was made with the same evaluation config, so
an interrupted evaluation resumes where it stopped. Which judges and settings: the `evals`
block of the config (configs/arith.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import pathlib
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from pvg_jax import cli, players, rollout, sharding
from pvg_jax import config as config_lib
from pvg_jax import train as train_lib
from pvg_jax.evals import attacks, classifier, judges, measures, survey
from pvg_jax.games import jitted, snapshots
from pvg_jax.metrics import MetricWriter
from pvg_jax.models import functional
from pvg_jax.worlds.arith import world as arith_world

HELPFUL, SNEAKY = arith_world.ROLE_HELPFUL, arith_world.ROLE_SNEAKY
LEGIBILITY_STREAM, BON_STREAM, INIT_TEST_STREAM, SEPARABILITY_STREAM = 51, 52, 53, 54
FIXED_SNEAKY_STREAM, CROSSPLAY_STREAM = 55, 56
INIT = -1   # "round" of the initial players


def load_config(workdir: pathlib.Path) -> ml_collections.ConfigDict:
  path = workdir / "config.json"
  if not path.exists():
    raise FileNotFoundError(f"{path} missing: is {workdir} a game workdir (pvg-train)?")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def _require_arith(cfg: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  world = config_lib.world_name(cfg)
  if world != "arith":
    raise config_lib.ConfigError(
        f"{workdir} is a {world} run: the post-hoc evaluations (checker and model judges, "
        "attacks, best-of-n) are the arith world's; its per-round held-out evaluation is in "
        "summary.json")


def _digest(obj) -> str:
  return hashlib.sha256(json.dumps(obj, sort_keys=True, default=list).encode()).hexdigest()[:12]


def _write_json(path: pathlib.Path, data) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".tmp")
  tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=_json_default))
  tmp.rename(path)


def _json_default(x):
  if isinstance(x, np.generic):
    return x.item()
  raise TypeError(f"not JSON serializable: {type(x)}")


class Evaluation:
  """The static parts every evaluation needs: config, world, players, jitted functions."""

  def __init__(self, workdir: str | pathlib.Path,
               cfg: ml_collections.ConfigDict | None = None, mesh=None,
               require_finished: bool = True):
    """`require_finished=False` also opens a game still running (no summary.json yet): its
    initial players and finished rounds can be read, e.g. for a judging campaign."""
    self.workdir = pathlib.Path(workdir)
    saved = load_config(self.workdir)
    if cfg is not None:
      diff = train_lib.game_config_diff(saved.to_dict(), cfg)
      if diff:
        raise config_lib.ConfigError(
            f"{self.workdir} was played with another config (keys: {', '.join(diff)}); "
            "evaluate it with its own config (only the `evals` block may differ)")
    self.cfg = cfg if cfg is not None else saved
    _require_arith(self.cfg, self.workdir)
    if "evals" not in self.cfg:
      raise config_lib.ConfigError(f"the config of {self.workdir} has no `evals` block; "
                                   "pass a config that has one (e.g. configs/arith.py)")
    config_lib.validate(self.cfg)
    summary = self.workdir / "summary.json"
    if summary.exists():
      self.summary = json.loads(summary.read_text())
    elif require_finished:
      raise FileNotFoundError(f"{summary} missing: the game in {self.workdir} has not "
                              "finished; run (or resume) it with pvg-train first")
    else:
      self.summary = {"rounds": []}
    self.rounds = len(self.summary["rounds"])
    self.mesh = mesh if mesh is not None else sharding.make_mesh(self.cfg.mesh.shape)
    self.world = arith_world.ArithWorld(self.cfg.world, self.cfg.seed)
    self.out = self.workdir / "evals"
    writer = MetricWriter(self.out)
    try:
      self.init = players.initial_players(self.cfg, self.workdir, self.mesh, writer)
    finally:
      writer.close()
    self.fns = jitted.build(self.cfg, self.world, self.init.prover_spec,
                            self.init.verifier_spec, self.mesh)
    # a cached result is valid for this game (config without `evals`, and its outcome)
    # and for the `evals` settings its part reads
    game = {k: v for k, v in saved.to_dict().items() if k not in train_lib.POST_HOC}
    self.game_id = _digest({"config": game, "summary": self.summary})
    ev = self.cfg.evals.to_dict()
    self.tags = {part: _digest({"game": self.game_id, **{k: ev[k] for k in keys if k in ev},
                                **({"format": PART_FORMAT[part]} if part in PART_FORMAT
                                   else {})})
                 for part, keys in PART_KEYS.items()}
    self._checker = judges.make_checker(self.cfg.evals, self.world)
    self._panel: list[judges.ModelJudge] | None = None
    self._cache_only = False          # part(cache_only=True): read, never compute

  # -- caching ---------------------------------------------------------------------------

  def cached(self, part: str, path: pathlib.Path, compute: Callable[[], dict]) -> dict:
    """compute() unless `path` holds a result made with the same settings of `part`."""
    tag = self.tags[part]
    if path.exists():
      data = json.loads(path.read_text())
      if data.get("evals_tag") == tag:
        return data
    if self._cache_only:
      raise NotCachedError(path)
    data = {"evals_tag": tag, **compute()}
    _write_json(path, data)
    return data

  # -- players ---------------------------------------------------------------------------

  def prover(self, round_: int, step: int):
    if round_ == INIT:
      return self.init.prover_params
    return snapshots.load(snapshots.prover_path(self.workdir, round_, step),
                          players.sharded_abstract(self.init.prover_spec, self.mesh))

  def verifier(self, round_: int):
    if round_ == INIT:
      return self.init.verifier_params
    return snapshots.load(snapshots.verifier_path(self.workdir, round_),
                          players.sharded_abstract(self.init.verifier_spec, self.mesh))

  def provers(self) -> list[tuple[int, int]]:
    """(round, step) of every prover to evaluate: the initial one, then each round's final
    prover, or every snapshot when `evals.all_snapshots` is set or the run is one long round
    (the correctness-only baseline, whose curve over PPO steps is the point)."""
    out = [(INIT, 0)]
    every = self.cfg.evals.all_snapshots or self.rounds == 1
    for r in range(self.rounds):
      steps = snapshots.prover_steps(self.workdir, r) if every else [self.final_step(r)]
      out += [(r, s) for s in steps]
    return out

  def final_step(self, round_: int) -> int:
    return int(self.summary["rounds"][round_]["ppo_steps"])

  def panel(self) -> list[judges.ModelJudge]:
    if self._panel is None:
      self._panel = judges.model_panel(self.cfg, self.world, self.init, self.workdir,
                                       self.mesh)
    return self._panel

  def sample(self, params, split: str, index: np.ndarray, roles: np.ndarray,
             key: jax.Array) -> rollout.Rollouts:
    return rollout.sample_rollouts(self.world, self.fns.sample_batch, params, split, index,
                                   roles, key, self.cfg.game.sample_batch)

  def key(self, stream: int, *path: int) -> jax.Array:
    key = jax.random.fold_in(jax.random.key(self.cfg.seed), stream)
    for p in path:
      key = jax.random.fold_in(key, p + 1)
    return key

  # -- the measures ----------------------------------------------------------------------

  def dynamics(self) -> dict:
    """K Fig. 5 from the PPO samples kept in rollouts/round_i/ppo_steps_*.npz."""
    def compute():
      out = {}
      for r in range(self.rounds):
        chunks = sorted((self.workdir / "rollouts" / f"round_{r}").glob("ppo_steps_*.npz"))
        if not chunks:
          continue
        parts = [dict(np.load(c)) for c in chunks]
        cat = {k: np.concatenate([p[k] for p in parts]) for k in
               ("step", "role", "correct", "verifier_score")}
        out[str(r)] = measures.step_curves(cat["step"], cat["role"], cat["correct"],
                                           cat["verifier_score"], HELPFUL)
      return {"rounds": out}
    return self.cached("dynamics", self.out / "dynamics.json", compute)

  def legibility(self, round_: int, step: int) -> dict:
    """Helpful accuracy and judge legibility of one prover (K's balanced protocol)."""
    ev = self.cfg.evals

    def compute():
      index, roles = rollout.both_roles(ev.test_problems, ev.samples_per_problem)
      helpful = roles == HELPFUL
      ro = self.sample(self.prover(round_, step), "test", index[helpful], roles[helpful],
                       self.key(LEGIBILITY_STREAM, round_, step))
      rng = np.random.default_rng([self.cfg.seed, LEGIBILITY_STREAM, round_ + 1, step])
      pick = measures.balanced_pick(ro.problem_index, ro.correct, rng)
      result = {"round": round_, "step": step, "accuracy": float(ro.correct.mean()),
                "samples": len(ro.correct), "problems": pick.problems,
                "dropped_all_correct": pick.dropped_all_correct,
                "dropped_all_incorrect": pick.dropped_all_incorrect,
                "all_steps_valid": float((ro.first_error == -1).mean()),
                "solution_tokens": float(ro.solution_mask.sum(axis=1).mean())}
      # every sample of the same fixed problems, helpful and sneaky, balanced accuracy
      sneaky = self.sample(self.prover(round_, step), "test", index[helpful],
                           np.full(int(helpful.sum()), SNEAKY),
                           self.key(FIXED_SNEAKY_STREAM, round_, step))
      result["fixed"] = {name: judges.judge_all(self._checker, self.panel(), self.world,
                                                "test", r)
                         for name, r in (("helpful", ro), ("sneaky", sneaky))}
      if not pick.problems:
        return {**result, "checker": None, "judges": {}}
      rows, correct = pick.rows, ro.correct[pick.rows]
      verdicts = judges.checker_verdicts(self._checker, self.world, "test",
                                         ro.problem_index[rows], ro.tokens[rows])
      accept = np.array([v.accept for v in verdicts])
      right = accept == correct
      time = np.array([v.time for v in verdicts], float)
      result["checker"] = {
          "accuracy": float(right.mean()), "budget": self._checker.budget,
          "accuracy_on_correct": float(right[correct].mean()),
          "accuracy_on_incorrect": float(right[~correct].mean()),
          "finished": float(np.mean([v.finished for v in verdicts])),
          "time_to_correct_verdict": float(time[right].mean()) if right.any() else None}
      result["judges"], result["judges_pairwise"] = {}, {}
      for j in self.panel():
        scores = j.scores(self.world, ro.tokens[rows])
        result["judges"][j.name] = float(((scores > j.threshold) == correct).mean())
        # rows come in (correct, incorrect) pairs of one problem: which one scores higher
        result["judges_pairwise"][j.name] = float(np.mean(scores[0::2] > scores[1::2]))
      result["panel"] = float(np.mean(list(result["judges"].values())))
      return result
    name = f"round_{round_}_step_{step:05d}.json"
    return self.cached("legibility", self.out / "legibility" / name, compute)

  def styles(self) -> list[dict]:
    """Per solution style (worlds/arith/styles.py) of every prover the legibility part
    judges, on its very samples (same problems and keys), helpful and sneaky: share,
    accuracy, and the checker's over-budget share and accuracy. Whether RL moves the mix
    to a style the checker cannot finish in time; empty in a single-style world."""
    if len(self.world.styles) < 2:
      return []
    ev = self.cfg.evals
    out = []
    for round_, step in tqdm(self.provers(), desc="styles", leave=False):
      def compute(round_=round_, step=step):
        index, roles = rollout.both_roles(ev.test_problems, ev.samples_per_problem)
        index = index[roles == HELPFUL]
        result = {"round": round_, "step": step}
        for name, role, stream in (("helpful", HELPFUL, LEGIBILITY_STREAM),
                                   ("sneaky", SNEAKY, FIXED_SNEAKY_STREAM)):
          ro = self.sample(self.prover(round_, step), "test", index,
                           np.full(len(index), role), self.key(stream, round_, step))
          result[name] = survey.style_breakdown(self.world, self._checker, "test", ro)
        return result
      name = f"round_{round_}_step_{step:05d}.json"
      out.append(self.cached("styles", self.out / "styles" / name, compute))
    return out

  def attacks(self) -> list[dict]:
    ev = self.cfg.evals
    out = []
    todo = [(reward, r) for reward in ev.attack_rewards for r in [INIT, *range(self.rounds)]]
    attackers: dict = {}
    for reward, r in tqdm(todo, desc="attacks", leave=False):
      def compute(reward=reward, r=r):
        if reward not in attackers:
          attackers.clear()       # one reward's jitted functions at a time
          attackers[reward] = attacks.Attacker(self.cfg, self.world, self.init, self.mesh,
                                               reward)
        target = (self.summary["initial_players"] if r == INIT
                  else self.summary["rounds"][r])["helpful_correct_score"]
        return attackers[reward].run(r, self.verifier(r), target)
      path = self.out / "attacks" / f"round_{'init' if r == INIT else r}_{reward}.json"
      out.append(self.cached("attacks", path, compute))
    return out

  def best_of_n(self) -> dict:
    """Balanced best-of-n of every verifier on one fixed set of initial-prover helpful
    samples on test problems (so differences are the verifiers')."""
    ev = self.cfg.evals

    def compute():
      index = np.repeat(np.arange(ev.test_problems), ev.bon_samples)
      ro = self.sample(self.init.prover_params, "test", index, np.full(len(index), HELPFUL),
                       self.key(BON_STREAM))
      out = {}
      for r in [INIT, *range(self.rounds)]:
        scores = rollout.score_sequences(self.world, self.fns.score, self.verifier(r),
                                         ro.tokens, self.cfg.game.sample_batch)
        row = {}
        for n in ev.best_of_n:
          rng = np.random.default_rng([self.cfg.seed, BON_STREAM, n])   # same draws for all
          frac, eligible = measures.best_of_n(ro.problem_index, ro.correct, scores, n,
                                              ev.bon_draws, rng)
          row[str(n)] = {"fraction_correct": frac, "problems": eligible}
        out[str(r)] = row
      return {"samples_accuracy": float(ro.correct.mean()), "by_verifier": out}
    return self.cached("best_of_n", self.out / "best_of_n.json", compute)

  def crossplay(self) -> dict:
    """Every verifier (V_init, V_0, ...) on every prover's samples (the initial prover and
    each round's final one; both roles, the same fixed test problems), so that a change of
    the verifier and a change of the prover are not confounded (measures.crossplay)."""
    ev = self.cfg.evals

    def compute():
      index, roles = rollout.both_roles(ev.test_problems, max(ev.samples_per_problem // 2, 1))
      verifiers = [INIT, *range(self.rounds)]
      params = [self.verifier(i) for i in verifiers]
      provers = {}
      for r in [INIT, *range(self.rounds)]:
        ro = self.sample(self.prover(r, 0 if r == INIT else self.final_step(r)), "test",
                         index, roles, self.key(CROSSPLAY_STREAM, r))
        scores = [rollout.score_sequences(self.world, self.fns.score, p, ro.tokens,
                                          self.cfg.game.sample_batch) for p in params]
        helpful = ro.role == HELPFUL
        provers[str(r)] = {**measures.crossplay(ro.problem_index, ro.correct, helpful, scores),
                           "helpful_accuracy": float(ro.correct[helpful].mean()),
                           "sneaky_accuracy": float(ro.correct[~helpful].mean())}
      return {"verifiers": verifiers, "provers": provers}
    return self.cached("crossplay", self.out / "crossplay.json", compute)

  def heldout_rollouts(self, round_: int) -> rollout.Rollouts | None:
    """Both roles on test problems: the game's own eval samples of each round, and the same
    protocol for the initial prover (sampled here, kept in evals/)."""
    if round_ == INIT:
      path = self.out / f"init_test_{self.game_id}.npz"
      if not path.exists():
        g = self.cfg.game
        index, roles = rollout.both_roles(g.eval_problems, g.eval_samples_per_role)
        ro = self.sample(self.init.prover_params, "test", index, roles,
                         self.key(INIT_TEST_STREAM))
        rollout.save_arrays(path, dataclasses.asdict(ro))
    else:
      path = self.workdir / "rollouts" / f"round_{round_}" / "eval_test.npz"
    with np.load(path) as f:
      return rollout.Rollouts(**{fl.name: f[fl.name] for fl in dataclasses.fields(
          rollout.Rollouts)})

  def flaws(self) -> dict:
    def compute():
      out = {}
      for r in [INIT, *range(self.rounds)]:
        ro = self.heldout_rollouts(r)
        sel = np.flatnonzero((ro.role == SNEAKY) & ~ro.correct)
        probs = self.world.problems("test", ro.problem_index[sel])
        checks = [self.world.check(p, t[self.world.layout.prompt_len:])
                  for p, t in zip(probs, ro.tokens[sel])]
        out[str(r)] = {**measures.flaw_stats(checks),
                       "helpful_accuracy": float(ro.correct[ro.role == HELPFUL].mean()),
                       "sneaky_accuracy": float(ro.correct[ro.role == SNEAKY].mean())}
      return {"by_round": out}
    return self.cached("flaws", self.out / "flaws.json", compute)

  def separability(self) -> dict:
    """A tiny classifier (the smallest verifier size) trained to tell helpful from sneaky
    samples of one prover (role token hidden) on half the test problems; ROC-AUC on the
    other half."""
    ev = self.cfg.evals

    def compute():
      out = {}
      spec = functional.make_spec(ev.separability_size, self.world.tokenizer.size,
                                  ("score",))
      for r in [INIT, *range(self.rounds)]:
        ro = self.heldout_rollouts(r)
        view = self.world.verifier_view(ro.tokens)
        mask = view != self.world.tokenizer.pad_id
        train = ro.problem_index % 2 == 0
        label = ro.role == HELPFUL
        params = classifier.train(spec, view[train], mask[train], label[train],
                                  ro.problem_index[train], ev.separability_steps,
                                  ev.separability_batch, ev.judge_lr,
                                  self.cfg.seed * 100 + SEPARABILITY_STREAM, self.mesh)
        s = classifier.scores(spec, params, view[~train], mask[~train])
        out[str(r)] = {"auc": rollout.roc_auc(label[~train], s),
                       "test_samples": int((~train).sum())}
      return {"by_round": out}
    return self.cached("separability", self.out / "separability.json", compute)

  # -- everything ------------------------------------------------------------------------

  def run(self, parts: tuple[str, ...] | None = None) -> dict:
    """Evaluate `parts` (default: all) and write results.json: those parts, and every other
    part whose cached files are complete and current (same game, same `evals` settings),
    so that e.g. `--parts attacks` after the cheap parts keeps them."""
    parts = PARTS if parts is None else parts
    results: dict = {"summary": self.summary, "config": json.loads(
        self.cfg.to_json_best_effort()), "workdir": str(self.workdir)}
    for part in PARTS:
      if part in parts:
        results[part] = self.part(part)
      else:
        with contextlib.suppress(NotCachedError):
          results[part] = self.part(part, cache_only=True)
    _write_json(self.out / "results.json", results)
    return results

  def part(self, name: str, cache_only: bool = False):
    """One part's result; `cache_only`: from its cached files, or NotCachedError."""
    self._cache_only = cache_only
    try:
      if name == "legibility":
        provers = self.provers()
        return [self.legibility(r, s) for r, s in tqdm(provers, desc="legibility",
                                                        leave=False, disable=cache_only)]
      return getattr(self, name)()
    finally:
      self._cache_only = False


class NotCachedError(Exception):
  """A part asked for from the cache only has a missing or stale file."""


PARTS = ("dynamics", "legibility", "styles", "best_of_n", "flaws", "separability",
         "crossplay", "attacks")
PART_KEYS = {   # the `evals` settings each part's cached result depends on
    "dynamics": (),
    "legibility": ("test_problems", "samples_per_problem", "checker_budget",
                   "checker_budget_share", "checker_effort_terse", "checker_effort_merged",
                   "checker_fallback", "judges", "judge_problems", "judge_samples_per_role",
                   "judge_steps", "judge_batch", "judge_lr"),
    "best_of_n": ("test_problems", "best_of_n", "bon_samples", "bon_draws"),
    "styles": ("test_problems", "samples_per_problem", "checker_budget",
               "checker_budget_share", "checker_effort_terse", "checker_effort_merged",
               "checker_fallback"),
    "flaws": (),
    "separability": ("separability_size", "separability_steps", "separability_batch",
                     "judge_lr"),
    "crossplay": ("test_problems", "samples_per_problem"),
    "attacks": ("attack_steps", "attack_groups", "attack_group_size", "attack_window"),
}
# parts whose results gained fields: a result cached by older code is recomputed
PART_FORMAT = {"legibility": 2, "attacks": 2}
# the baseline's round-0 verifier is the game's (same seed, same pool source 0): attacking
# it or ranking with it again would repeat the game's numbers
BASELINE_PARTS = ("dynamics", "legibility", "styles", "flaws", "separability")


def check_parts(parts: tuple[str, ...] | None) -> None:
  """A one-line error for a --parts name that is not one of PARTS."""
  for part in parts or ():
    if part not in PARTS:
      raise cli.UserError(f"--parts: unknown evaluation {part!r}; expected some of "
                          f"{', '.join(PARTS)}")


def evaluate(workdir: str | pathlib.Path, cfg: ml_collections.ConfigDict | None = None,
             parts: tuple[str, ...] | None = None) -> dict:
  """Run (or resume) the evaluations of `workdir` (default: all of them, or
  BASELINE_PARTS for a correctness-only run); returns results.json's content."""
  check_parts(parts)                # before anything is loaded or compiled
  evaluation = Evaluation(workdir, cfg)
  if parts is None:
    parts = BASELINE_PARTS if evaluation.cfg.game.reward == "correctness" else PARTS
  return evaluation.run(parts)


def run() -> None:
  """Console-script entry point (pvg-eval). Flags are defined here, not at import, so the
  module can be imported next to other command-line modules."""
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file(
      "config", None, "Optional config file whose `evals` block replaces the workdir's.")
  flags.DEFINE_string("workdir", None, "A game workdir (after pvg-train).")
  flags.DEFINE_string("parts", "", "Comma-separated evaluations to run (default: all that "
                      "apply to the run)")
  flags.mark_flags_as_required(["workdir"])
  cli.run_app("pvg-eval", _main)


def _main(argv) -> None:
  from absl import flags
  from absl import logging as absl_logging
  del argv
  absl_logging.set_verbosity(absl_logging.WARNING)
  f = flags.FLAGS
  workdir = pathlib.Path(f.workdir)
  cfg = load_config(workdir)
  if cfg.get("game_type") == "debate":     # the debate game's own evaluation
    from pvg_jax.debate import evaluate as debate_evaluate
    debate_evaluate.print_tournament(debate_evaluate.evaluate(cfg, workdir))
    return
  _require_arith(cfg, workdir)
  if f.config is not None:
    cfg.evals = ml_collections.ConfigDict(f.config.evals.to_dict())
  elif "evals" not in cfg:
    raise config_lib.ConfigError(f"{workdir}/config.json has no `evals` block; pass "
                                 "--config (e.g. configs/arith.py) to supply one")
  evaluate(workdir, cfg, tuple(p for p in f.parts.split(",") if p) or None)


if __name__ == "__main__":
  run()
