"""Learning probes: short PPO runs from the initial players that show whether the prover
phase learns what it should, and nothing else.

A probe plays `steps` PPO steps of the round-0 prover phase with one reward and one set of
roles against one frozen verifier, then measures on fixed held-out test problems what moved:

    zero          R = 0 for both roles: only the KL penalty acts, so nothing should move
    correctness   R = correct, helpful role: accuracy should rise
    oracle_src    SRC with the grader as verifier, helpful role: accuracy should rise
    sneaky_only   SRC against V_init, sneaky role only: the helpful role should not move
    src           SRC against V_init, both roles (the game's prover phase of round 0)

Measured before and after (`measure_prover`): helpful and sneaky accuracy on one sample per
test problem and role, KL(pi || pi_init) per solution on those samples (the k1 estimate
log pi - log pi_init summed over the solution's tokens), and the mean log-probability of
the canonical (helpful) solutions under the helpful prompt. `noise_bound` gives the
3-sigma bound on an accuracy change that sampling alone can produce.

Run at full size with `pvg-probe` (the table in the closing note of the learning fixes);
the learning tests (tests/test_learning.py) run them at smoke size.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from pvg_jax import cli, rollout
from pvg_jax.games import jitted, phases
from pvg_jax.models import functional, sampler
from pvg_jax.players import Players
from pvg_jax.rl import stopping
from pvg_jax.worlds.arith import world as arith_world

PROBE_STREAM, MEASURE_STREAM = 51, 52
PARITY_REASONS = ("score_parity", "score_parity_and_sneaky_below_5pct")
HELPFUL, SNEAKY = arith_world.ROLE_HELPFUL, arith_world.ROLE_SNEAKY


@dataclasses.dataclass(frozen=True)
class Probe:
  reward: str
  roles: str          # both | helpful | sneaky


PROBES = {
    "zero": Probe("zero", "both"),
    "correctness": Probe("correctness", "helpful"),
    "oracle_src": Probe("oracle_src", "helpful"),
    "sneaky_only": Probe("src", "sneaky"),
    "src": Probe("src", "both"),
}


def noise_bound(p: float, n: int, sigmas: float = 3.0) -> float:
  """Largest |accuracy change| that sampling noise alone reaches at `sigmas` standard
  deviations: two independent estimates of a rate p from n Bernoulli draws each differ by
  sigmas * sqrt(2 p (1 - p) / n)."""
  return sigmas * math.sqrt(2.0 * p * (1.0 - p) / n)


def probe_config(cfg: ml_collections.ConfigDict, probe: Probe,
                 steps: int) -> ml_collections.ConfigDict:
  """The game config with the probe's reward, roles and a budget of `steps` PPO steps."""
  out = ml_collections.ConfigDict(cfg.to_dict())
  out.game.reward = probe.reward
  out.game.roles = probe.roles
  out.game.ppo.max_steps = out.game.ppo.steps = steps
  return out


class ProverMeasure:
  """Jitted functions to measure provers against one initial prover on fixed test
  problems, built once and shared by every probe."""

  def __init__(self, cfg: ml_collections.ConfigDict, world: arith_world.ArithWorld,
               init: Players, num_problems: int):
    self.cfg, self.world, self.init = cfg, world, init
    self.num_problems = num_problems
    num = world.layout.solution_len
    spec = init.prover_spec
    self._logp = jax.jit(lambda p, t, m: functional.token_logprobs(spec, p, t, m, num))
    self._sample = sampler.make_sampler(spec, solution_len=num, eos_id=world.tokenizer.eos_id,
                                        pad_id=world.tokenizer.pad_id, temperature=1.0)
    probs = world.problems("test", np.arange(num_problems))
    canon = world.solution_batch(probs, [HELPFUL] * num_problems,
                                 np.random.default_rng([cfg.seed, MEASURE_STREAM]))
    self._canonical = canon

  def _sum_logp(self, params, tokens, kv_mask, mask) -> np.ndarray:
    b = self.cfg.game.sample_batch
    out = [self._logp(params, rollout.pad_rows(tokens[s:s + b], b),
                      rollout.pad_rows(kv_mask[s:s + b], b)) for s in range(0, len(tokens), b)]
    logp = np.concatenate(jax.device_get(out))[:len(tokens)]
    return np.where(mask, logp, 0.0).sum(axis=1)

  def __call__(self, policy_params) -> dict:
    n = self.num_problems
    index, roles = rollout.both_roles(n, 1)
    ro = rollout.sample_rollouts(self.world, self._sample, policy_params, "test",
                                 index, roles, jax.random.fold_in(
                                     jax.random.key(self.cfg.seed), MEASURE_STREAM),
                                 self.cfg.game.sample_batch)
    own = np.where(ro.solution_mask, ro.logprobs, 0.0).sum(axis=1)
    ref = self._sum_logp(self.init.prover_params, ro.tokens, ro.kv_mask, ro.solution_mask)
    kl = own - ref
    helpful = ro.role == HELPFUL
    c = self._canonical
    return {
        "helpful_accuracy": float(ro.correct[helpful].mean()),
        "sneaky_accuracy": float(ro.correct[~helpful].mean()),
        "kl_helpful": float(kl[helpful].mean()),
        "kl_sneaky": float(kl[~helpful].mean()),
        "canonical_logp": float(self._sum_logp(policy_params, c.tokens, c.kv_mask,
                                               c.loss_mask).mean()),
        "problems": n,
    }


def run_probe(cfg: ml_collections.ConfigDict, world: arith_world.ArithWorld, init: Players,
              mesh, name: str, steps: int, measure: ProverMeasure | None = None,
              num_problems: int = 512, verifier_params=None, keep_state: bool = False) -> dict:
  """Play probe `name` for `steps` PPO steps from the initial players; returns the
  measures before and after, the per-step curve (training accuracy, the share of groups
  whose solutions are all correct and identical, the step's metrics), the noise bounds,
  and with keep_state the final PPO state."""
  probe = PROBES[name]
  pcfg = probe_config(cfg, probe, steps)
  fns = jitted.build(pcfg, world, init.prover_spec, init.verifier_spec, mesh)
  measure = measure or ProverMeasure(pcfg, world, init, num_problems)
  verifier = init.verifier_params if verifier_params is None else verifier_params
  before = measure(init.prover_params)
  state = phases.fresh_prover_state(pcfg, world, fns, init, verifier,
                                    jax.random.fold_in(jax.random.key(pcfg.seed), PROBE_STREAM))
  beta = pcfg.game.ppo.beta
  pg = pcfg.game.ppo
  curve = []
  # The round's stopping rule, watched but not obeyed: the probe runs all its steps.
  monitor = stopping.StopMonitor(pcfg.game.reward, steps + 1, pg.stop_window)
  parity_step = None
  for step in tqdm(range(steps), desc=f"probe {name}", leave=False, mininterval=1):
    rng = np.random.default_rng([pcfg.seed, PROBE_STREAM, step])
    problems = rng.integers(pcfg.game.prover_problems, size=pg.groups)
    helpful = phases.draw_roles(probe.roles, rng, pg.groups)
    probs = world.problems("prover", np.repeat(problems, pg.group_size))
    roles = np.repeat(np.where(helpful, HELPFUL, SNEAKY), pg.group_size)
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(pcfg.seed), PROBE_STREAM),
                             step)
    state, beta, scores, metrics, batch, _, _ = phases.ppo_iteration(
        world, fns, state, init.prover_params, verifier, probs, roles, helpful, beta,
        pg.adaptive_kl, key)
    stats = stopping.StepStats.from_samples(scores, batch["correct"],
                                            np.repeat(helpful, pg.group_size))
    reason = monitor.update(stats, step + 1)
    if reason in PARITY_REASONS and parity_step is None:
      parity_step = step + 1
    window = monitor.summary()
    curve.append({"step": step + 1, "train_accuracy": float(batch["correct"].mean()),
                  "uniform_correct_groups": uniform_correct_share(batch, pg.groups),
                  "window_helpful_correct_score": window["helpful_correct_score"],
                  "window_sneaky_incorrect_score": window["sneaky_incorrect_score"],
                  "window_sneaky_accuracy": window["sneaky_accuracy"],
                  **{k: float(v) for k, v in jax.device_get(metrics).items()}})
  after = measure(state["params"]["policy"])
  out = {"probe": name, "reward": probe.reward, "roles": probe.roles, "steps": steps,
         "before": before, "after": after,
         "noise_bound_helpful": noise_bound(before["helpful_accuracy"], before["problems"]),
         "noise_bound_sneaky": noise_bound(before["sneaky_accuracy"], before["problems"]),
         "parity_step": parity_step, "curve": curve}
  if keep_state:
    out["state"] = state
  return out


def uniform_correct_share(batch: dict, groups: int) -> float:
  """Share of a PPO batch's groups whose b solutions are all correct and token-identical
  (the groups on which SRC's floor and a whitened critic baseline used to punish the
  prover's surest right answers)."""
  tokens = batch["tokens"].reshape(groups, -1, batch["tokens"].shape[1])
  correct = batch["correct"].reshape(groups, -1)
  same = (tokens == tokens[:, :1]).all(axis=(1, 2))
  return float((same & correct.all(axis=1)).mean())


def format_table(results: list[dict]) -> str:
  """A markdown table: one row per probe, accuracy and KL before -> after."""
  head = ("| probe | steps | helpful acc | sneaky acc | KL helpful | KL sneaky | "
          "log p(canonical) | 3-sigma noise (helpful) | parity step |\n"
          "|---|---|---|---|---|---|---|---|---|")
  rows = []
  for r in results:
    b, a = r["before"], r["after"]
    rows.append(f"| {r['probe']} | {r['steps']} | {b['helpful_accuracy']:.3f} -> "
                f"{a['helpful_accuracy']:.3f} | {b['sneaky_accuracy']:.3f} -> "
                f"{a['sneaky_accuracy']:.3f} | {a['kl_helpful']:.2f} | {a['kl_sneaky']:.2f} | "
                f"{b['canonical_logp']:.2f} -> {a['canonical_logp']:.2f} | "
                f"+-{r['noise_bound_helpful']:.3f} | {r.get('parity_step') or '-'} |")
  return "\n".join([head, *rows])


def run_all(cfg: ml_collections.ConfigDict, workdir: pathlib.Path, mesh, init: Players,
            names: list[str], steps: int, num_problems: int) -> list[dict]:
  """Every probe in `names`, each from the same initial players; writes
  <workdir>/probes.json and probes.md."""
  world = arith_world.ArithWorld(cfg.world, cfg.seed)
  results = []
  measure = ProverMeasure(cfg, world, init, num_problems)
  for name in names:
    r = run_probe(cfg, world, init, mesh, name, steps, measure, num_problems)
    results.append(r)
    print(format_table([r]).splitlines()[-1], flush=True)
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "probes.json").write_text(json.dumps(results, indent=1))
    (workdir / "probes.md").write_text(format_table(results) + "\n")
  return results


def main(argv) -> None:
  """pvg-probe: every probe from the config's (cached) initial players."""
  from absl import flags, logging

  from pvg_jax import config as config_lib
  from pvg_jax import players, sharding
  from pvg_jax.metrics import MetricWriter
  del argv
  logging.set_verbosity(logging.WARNING)
  f = flags.FLAGS
  cfg = f.config
  config_lib.validate(cfg)
  names = f.probes.split(",")
  unknown = [n for n in names if n not in PROBES]
  if unknown:
    raise SystemExit(f"--probes: unknown {unknown}; choose from {sorted(PROBES)}")
  workdir = pathlib.Path(f.workdir)
  mesh = sharding.make_mesh(cfg.mesh.shape)
  init = players.initial_players(cfg, workdir, mesh, MetricWriter(workdir))
  run_all(cfg, workdir, mesh, init, names, f.steps, f.problems)
  print(f"wrote {workdir / 'probes.md'}")


def run() -> None:
  """Console-script entry point (pvg-probe)."""
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "Experiment config file.")
  flags.DEFINE_string("workdir", None, "Where probes.json/.md (and, by default, the initial "
                      "players' cache) go.")
  flags.DEFINE_string("probes", ",".join(PROBES), f"Comma-separated, of {sorted(PROBES)}.")
  flags.DEFINE_integer("steps", 30, "PPO steps of every probe.")
  flags.DEFINE_integer("problems", 1024, "Test problems each measurement samples.")
  flags.mark_flags_as_required(["config", "workdir"])
  cli.run_app("pvg-probe", main)


if __name__ == "__main__":
  run()
