"""The world survey: what each solution style does for the initial players and the judges,
measured before any game is played (issue "Redo the reproduction": "before any seeds").

    pvg-survey --config configs/arith.py:styles --workdir runs/survey

trains (or restores from the cache) the config's initial players, then measures on held-out
test problems, per solution style (worlds/arith/styles.py):

- the initial prover's samples: each role's share of each style and its accuracy in it;
- the budgeted checker on those samples (all of them, not a balanced pick): its mean cost,
  the share that exhausts the budget (of all samples and of the correct ones: a wrong one
  is mostly rejected at its first invalid clause, before the budget runs out), its
  accuracy (accept == correct);
- the initial verifier: ROC-AUC of its score for correctness among the samples of a style
  (both roles pooled), and its pairwise accuracy on generator pairs written in that style
  (the canonical and a flaw-injected solution of one problem), which no sampling noise
  touches;
- the checker's cost of generator-written solutions of each style, and the share of them
  over the budget.

From these the direction of each of K's findings follows if the mechanism works (docs):
a style that is more accurate for the prover and costlier for the checker is where
correctness-only RL can drift and lose legibility; a style the verifier ranks worse is
where a sneaky prover can hide. With `--probe correctness` the survey is repeated after that
many PPO steps of the correctness-only probe (games/probes.py): whether correctness-only RL
moves the style mix, measured rather than predicted. Writes <workdir>/survey.json and
survey.md.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import ml_collections
import numpy as np

from pvg_jax import cli, files, rollout
from pvg_jax.evals import judges
from pvg_jax.models import functional, sampler
from pvg_jax.players import Players
from pvg_jax.worlds.arith import checker, flaws, styles, tokenizer
from pvg_jax.worlds.arith import world as arith_world

SURVEY_STREAM = 61
HELPFUL, SNEAKY = arith_world.ROLE_HELPFUL, arith_world.ROLE_SNEAKY
ROLE_NAMES = {HELPFUL: "helpful", SNEAKY: "sneaky"}
SAMPLE_STYLES = (*styles.STYLES, "mixed", "none")    # what a sample's style can be


def _mean(x: np.ndarray) -> float | None:
  return float(np.mean(x)) if len(x) else None


def _finite_or_none(x: float) -> float | None:
  return float(x) if np.isfinite(x) else None     # e.g. an AUC over one class


def generator_pairs(world: arith_world.ArithWorld, style: str, n: int, seed: int
                    ) -> np.ndarray:
  """[2n, T] token rows: rows 2i, 2i+1 are the canonical and a flaw-injected solution of
  test problem i, both written in `style` (the same flaw for every style)."""
  rng = np.random.default_rng([seed, SURVEY_STREAM])
  probs = world.problems("test", range(n))
  texts = []
  for p in probs:
    flawed = flaws.inject(p, rng, max_number=world.cfg.max_number,
                          p_arith=world.cfg.p_arith_flaw, max_delta=world.cfg.max_flaw_delta)
    texts += [styles.render(p, p.canonical_steps(), p.answer, style),
              styles.render(p, flawed.steps, flawed.answer, style)]
  sols = np.stack([tokenizer.encode_solution(world.tokenizer, world.layout, t) for t in texts])
  batch = world.sequences(world.prompts([p for p in probs for _ in (0, 1)], [HELPFUL] * 2 * n),
                          sols)
  return batch.tokens


def classify(world: arith_world.ArithWorld, judge: judges.BudgetedChecker, split: str,
             ro: rollout.Rollouts) -> tuple[np.ndarray, ...]:
  """Per sample: its style (SAMPLE_STYLES), the checker's cost of reading it, and the
  checker's verdict (accept) and whether it finished within its budget."""
  probs = world.problems(split, ro.problem_index)
  words = [world.tokenizer.solution_words(t) for t in ro.tokens[:, world.layout.prompt_len:]]
  style = np.array([styles.style_of(checker.clauses(w)) for w in words])
  verdicts = [judge.judge(p, w) for p, w in zip(probs, words)]
  cost = np.array([judge.cost(w) for w in words], float)
  accept = np.array([v.accept for v in verdicts])
  finished = np.array([v.finished for v in verdicts])
  return style, cost, accept, finished


def style_breakdown(world: arith_world.ArithWorld, judge: judges.BudgetedChecker,
                    split: str, ro: rollout.Rollouts) -> dict[str, dict]:
  """Per style of one prover's samples (one role): the share of the samples, their
  accuracy, and the checker's over-budget share (of all and of the correct ones) and
  accuracy. What moves when RL changes the style mix (docs/reproduction_plan.md)."""
  style, _, accept, finished = classify(world, judge, split, ro)
  out = {}
  for s in SAMPLE_STYLES:
    mine = style == s
    out[s] = {"share": float(mine.mean()), "samples": int(mine.sum()),
              "accuracy": _mean(ro.correct[mine]),
              "over_budget": _mean(~finished[mine]),
              "over_budget_correct": _mean(~finished[mine & ro.correct]),
              "checker_accuracy": _mean(accept[mine] == ro.correct[mine])}
  return out


def survey(cfg: ml_collections.ConfigDict, world: arith_world.ArithWorld, init: Players,
           num_problems: int, samples_per_role: int) -> dict:
  """The per-style measures of the module docstring, as a dict (see `format_table`)."""
  batch = cfg.eval.batch_size
  sample_fn = sampler.make_sampler(init.prover_spec, solution_len=world.layout.solution_len,
                                   eos_id=world.tokenizer.eos_id, pad_id=world.tokenizer.pad_id,
                                   temperature=cfg.eval.temperature)
  score_fn = jax.jit(lambda p, t, m: functional.scores(init.verifier_spec, p, t, m))
  index, roles = rollout.both_roles(num_problems, samples_per_role)
  ro = rollout.sample_rollouts(world, sample_fn, init.prover_params, "test", index, roles,
                               jax.random.fold_in(jax.random.key(cfg.seed), SURVEY_STREAM),
                               batch)
  scores = rollout.score_sequences(world, score_fn, init.verifier_params, ro.tokens, batch)
  judge = judges.make_checker(cfg.evals, world)
  style, cost, accept, finished = classify(world, judge, "test", ro)

  samples = {}
  for s in SAMPLE_STYLES:
    row = {}
    for r, name in ROLE_NAMES.items():
      sel = (ro.role == r)
      mine = sel & (style == s)
      row[f"{name}_share"] = float(mine.sum() / sel.sum())
      row[f"{name}_accuracy"] = _mean(ro.correct[mine])
    sel = style == s
    row.update(samples=int(sel.sum()), checker_cost=_mean(cost[sel]),
               checker_over_budget=_mean(~finished[sel]),
               checker_over_budget_correct=_mean(~finished[sel & ro.correct]),
               checker_accuracy=_mean(accept[sel] == ro.correct[sel]),
               verifier_auc=_finite_or_none(rollout.roc_auc(ro.correct[sel], scores[sel])))
    samples[s] = row

  generated = {}
  for s in world.styles:
    tokens = generator_pairs(world, s, num_problems, cfg.seed)
    pair_scores = rollout.score_sequences(world, score_fn, init.verifier_params, tokens, batch)
    costs = np.array([judge.cost(world.tokenizer.solution_words(t))
                      for t in tokens[0::2, world.layout.prompt_len:]])
    generated[s] = {"verifier_pairwise": float(np.mean(pair_scores[0::2] > pair_scores[1::2])),
                    "checker_cost": float(costs.mean()),
                    "checker_over_budget": float(np.mean(costs > judge.budget))}
  return {"problems": num_problems, "samples_per_role": samples_per_role,
          "checker_budget": judge.budget, "checker_effort": dict(judge.effort),
          "world_styles": list(world.styles), "world_style_weights": list(world.style_weights),
          "helpful_accuracy": float(ro.correct[ro.role == HELPFUL].mean()),
          "sneaky_accuracy": float(ro.correct[ro.role == SNEAKY].mean()),
          "checker_over_budget": float((~finished).mean()),
          "samples": samples, "generated": generated}


def format_table(result: dict) -> str:
  """Two markdown tables: the initial prover's samples by style, generator pairs by style."""
  def f(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"
  lines = [f"checker budget {result['checker_budget']} (effort {result['checker_effort']}); "
           f"{result['problems']} test problems x {result['samples_per_role']} samples per "
           f"role; helpful accuracy {result['helpful_accuracy']:.3f}, sneaky "
           f"{result['sneaky_accuracy']:.3f}; over budget {result['checker_over_budget']:.3f}",
           "",
           "| style | helpful share | helpful acc | sneaky share | sneaky acc | checker cost | "
           "over budget | over budget (correct) | checker acc | verifier AUC |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for s, r in result["samples"].items():
    if not r["samples"]:
      continue
    lines.append(f"| {s} | {f(r['helpful_share'])} | {f(r['helpful_accuracy'])} | "
                 f"{f(r['sneaky_share'])} | {f(r['sneaky_accuracy'])} | "
                 f"{f(r['checker_cost'], 1)} | {f(r['checker_over_budget'])} | "
                 f"{f(r['checker_over_budget_correct'])} | {f(r['checker_accuracy'])} | "
                 f"{f(r['verifier_auc'])} |")
  lines += ["", "| style (generator-written) | verifier pairwise | checker cost | over budget |",
            "|---|---|---|---|"]
  for s, r in result["generated"].items():
    lines.append(f"| {s} | {f(r['verifier_pairwise'])} | {f(r['checker_cost'], 1)} | "
                 f"{f(r['checker_over_budget'])} |")
  return "\n".join(lines)


def main(argv) -> None:
  """pvg-survey: the per-style survey of the config's (cached) initial players."""
  from absl import flags, logging

  from pvg_jax import config as config_lib
  from pvg_jax import players, sharding
  from pvg_jax.games import probes
  from pvg_jax.metrics import MetricWriter
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  f = flags.FLAGS
  cfg = f.config
  config_lib.validate(cfg)
  if config_lib.world_name(cfg) != "arith":
    raise cli.UserError("pvg-survey measures the arith world's solution styles; "
                        f"config.world.name is {config_lib.world_name(cfg)!r}")
  if f.probe and f.probe not in probes.PROBES:          # before anything is built
    raise cli.UserError(f"--probe: unknown {f.probe!r}; choose from {sorted(probes.PROBES)}")
  workdir = pathlib.Path(f.workdir)
  mesh = sharding.make_mesh(cfg.mesh.shape)
  writer = MetricWriter(workdir)
  try:
    init = players.initial_players(cfg, workdir, mesh, writer)
  finally:
    writer.close()
  world = arith_world.ArithWorld(cfg.world, cfg.seed)
  result = survey(cfg, world, init, f.problems, f.samples)
  table = format_table(result)
  if f.probe:                         # what PPO with that probe's reward does to the mix
    run = probes.run_probe(cfg, world, init, mesh, f.probe, f.probe_steps, keep_state=True)
    moved = dataclasses.replace(init, prover_params=run["state"]["params"]["policy"])
    result["after_probe"] = {"probe": f.probe, "steps": f.probe_steps,
                             **survey(cfg, world, moved, f.problems, f.samples)}
    table += (f"\n\nAfter {f.probe_steps} PPO steps of the {f.probe!r} probe "
              f"(games/probes.py):\n\n" + format_table(result["after_probe"]))
  if jax.process_index() == 0:
    files.atomic_write_text(workdir / "survey.json", json.dumps(result, indent=1))
    files.atomic_write_text(workdir / "survey.md", table + "\n")
  print(table)


def run() -> None:
  """Console-script entry point (pvg-survey)."""
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "Experiment config file.")
  flags.DEFINE_string("workdir", None, "Where survey.json/.md (and, by default, the initial "
                      "players' cache) go.")
  flags.DEFINE_integer("problems", 512, "Test problems sampled and paired.")
  flags.DEFINE_integer("samples", 4, "Prover samples per problem and role.")
  flags.DEFINE_string("probe", "", "Also survey the prover after this learning probe's PPO "
                      "(e.g. correctness: does correctness-only RL change the style mix?).")
  flags.DEFINE_integer("probe_steps", 60, "PPO steps of --probe.")
  flags.mark_flags_as_required(["config", "workdir"])
  cli.run_app("pvg-survey", main)


if __name__ == "__main__":
  run()
