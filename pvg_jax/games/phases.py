"""The phases of a checkability round (METHOD 1.1-1.2) and its held-out evaluation.

Each phase is a function of the game's static parts (config, world, jitted functions,
initial players) and of explicit state; randomness comes from (seed, stream, round, step),
so a phase re-run after a restart does exactly what the interrupted one did.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from pvg_jax import cli, preemption, rollout
from pvg_jax.games import snapshots
from pvg_jax.games.jitted import GameFunctions
from pvg_jax.games.state import Preempted
from pvg_jax.metrics import MetricWriter
from pvg_jax.players import Players
from pvg_jax.rl import rewards, stopping
from pvg_jax.verifier.pool import SamplePool, mixture_weights
from pvg_jax.worlds.arith import world as arith_world

(POOL_STREAM, VERIFIER_STREAM, PPO_STREAM, EVAL_STREAM, CRITIC_STREAM,
 GENERATOR_STREAM) = 11, 12, 13, 14, 15, 16
HELPFUL, SNEAKY = arith_world.ROLE_HELPFUL, arith_world.ROLE_SNEAKY


@dataclasses.dataclass
class Context:
  """The static parts of a game, shared by every phase."""

  cfg: ml_collections.ConfigDict
  world: arith_world.ArithWorld
  fns: GameFunctions
  init: Players
  pool: SamplePool
  writer: MetricWriter
  workdir: pathlib.Path

  def key(self, stream: int, *path: int) -> jax.Array:
    key = jax.random.fold_in(jax.random.key(self.cfg.seed), stream)
    for p in path:
      key = jax.random.fold_in(key, p)
    return key

  def rng(self, stream: int, *path: int) -> np.random.Generator:
    return np.random.default_rng([self.cfg.seed, stream, *path])


def sample_pool_source(ctx: Context, source: int, policy_params) -> None:
  """Samples of one prover (both roles) on the pool's verifier-split problems."""
  g = ctx.cfg.game
  index, roles = rollout.both_roles(g.pool_problems, g.pool_samples_per_role)
  with tqdm(total=-(-len(index) // g.sample_batch), desc=f"pool source {source}",
            leave=False) as bar:
    ro = rollout.sample_rollouts(ctx.world, ctx.fns.sample_batch, policy_params, "verifier",
                                 index, roles, ctx.key(POOL_STREAM, source), g.sample_batch,
                                 bar)
  ctx.pool.add(source, ro)


def verifier_phase(ctx: Context, round_: int, previous_params) -> tuple[dict, dict]:
  """Train the round's verifier on fresh balanced batches from pool sources 0..round_
  (with game.verifier.steps = 0, no training: V_i = V_init, the frozen-verifier control).

  Starts from the initial verifier (or `previous_params` with warm_start_verifier). Every
  step draws its own `batch_size` problems and k balanced solutions each (pool.py), so the
  verifier sees the whole pool rather than one fixed draw. A share `generator_share` of each
  step's problems are generator pairs instead (`generator_problems`), the data the initial
  verifier was pretrained on: replayed so fine-tuning on a small pool adds what the pool
  teaches without forgetting the rest. Returns (params, results);
  results include pairwise accuracy / AUC on held-out pool problems (never trained on),
  of this verifier and of the initial one, over all sources and on the newest source, and
  the paired gain of this verifier over the initial one with its standard error
  (`verifier_heldout[_newest]_gain[_se]`, rollout.pairwise_gain).
  """
  g, vg = ctx.cfg.game, ctx.cfg.game.verifier
  sources = list(range(round_ + 1))
  weights = mixture_weights(g.mixture, len(sources))
  train_problems = np.arange(g.heldout_pool_problems, g.pool_problems)
  draws = ctx.pool.sampler(sources, weights, train_problems)
  start = previous_params if g.warm_start_verifier else ctx.init.verifier_params
  state = ctx.fns.init_verifier_state(start)
  seq = ctx.world.layout.seq_len
  steps = vg.steps if len(draws) else 0     # vg.steps = 0: the frozen-V_init control
  if vg.steps and not steps:
    logging.warning("round %d: no pool problem has both correct and incorrect samples; the "
                    "verifier keeps its starting weights", round_)
  n_gen = round(vg.generator_share * vg.batch_size)
  for step in tqdm(range(steps), desc=f"round {round_} verifier", leave=False,
                   mininterval=1):
    if preemption.requested():
      raise cli.Preempted(f"SIGTERM in round {round_}'s verifier phase")
    data = draws.batch(ctx.rng(VERIFIER_STREAM, round_, step), vg.batch_size - n_gen, vg.k)
    tokens, kv_mask, correct = data.tokens, data.kv_mask, data.correct
    if n_gen:
      gen = generator_problems(ctx, ctx.rng(GENERATOR_STREAM, round_, step), n_gen, vg.k)
      tokens, kv_mask, correct = (np.concatenate([a, b]) for a, b in
                                  zip((tokens, kv_mask, correct), gen))
    batch = {"tokens": ctx.world.verifier_view(tokens.reshape(-1, seq)),
             "kv_mask": kv_mask.reshape(-1, seq), "correct": correct,
             "valid": np.ones_like(correct)}
    state, metrics = ctx.fns.verifier_step(state, batch)
    if (step + 1) % ctx.cfg.log_every == 0 or step + 1 == vg.steps:
      ctx.writer.write(f"round_{round_}/verifier", step + 1, metrics)
  results = {"verifier_train_problems": len(draws),
             "verifier_skipped_no_correct": draws.skipped_no_correct,
             "verifier_skipped_no_incorrect": draws.skipped_no_incorrect}
  for tag, srcs in (("heldout", sources), ("heldout_newest", sources[-1:])):
    index, correct, tokens = _heldout_samples(ctx, srcs)
    scores = {}
    for name, params in (("verifier", state["params"]),
                         ("init_verifier", ctx.init.verifier_params)):
      scores[name] = rollout.score_sequences(ctx.world, ctx.fns.score, params, tokens,
                                             g.sample_batch)
      acc, pairs, _ = rollout.pairwise_accuracy(index, correct, scores[name])
      results.update({f"{name}_{tag}_pairwise_accuracy": acc, f"{name}_{tag}_pairs": pairs,
                      f"{name}_{tag}_auc": rollout.roc_auc(correct, scores[name])})
    gain, se = rollout.pairwise_gain(index, correct, scores["verifier"],
                                     scores["init_verifier"])
    results.update({f"verifier_{tag}_gain": gain, f"verifier_{tag}_gain_se": se})
  return state["params"], results


def generator_problems(ctx: Context, rng: np.random.Generator, n: int,
                       k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """n verifier-split problems outside the held-out pool problems, each with k generator
  solutions: k/2 canonical (correct) and k/2 flaw-injected (incorrect), as in verifier
  pretraining. Returns tokens and kv_mask [n, k, T] and correct [n, k]."""
  first = ctx.cfg.game.heldout_pool_problems
  index = rng.integers(first, max(ctx.cfg.verifier_pretrain.num_problems, first + 1), size=n)
  roles = np.repeat([HELPFUL, SNEAKY], k // 2)
  probs = [p for p in ctx.world.problems("verifier", index) for _ in range(k)]
  data = ctx.world.solution_batch(probs, np.tile(roles, n), rng)
  seq = ctx.world.layout.seq_len
  correct = np.tile(roles == HELPFUL, (n, 1))
  return data.tokens.reshape(n, k, seq), data.kv_mask.reshape(n, k, seq), correct


def _heldout_samples(ctx: Context, sources: list[int]):
  """(problem_index, correct, tokens) of the held-out pool problems' samples of `sources`."""
  held = ctx.cfg.game.heldout_pool_problems
  parts = [ctx.pool.load(s) for s in sources]
  keep = [p["problem_index"] < held for p in parts]
  return tuple(np.concatenate([p[f][k] for p, k in zip(parts, keep)])
               for f in ("problem_index", "correct", "tokens"))


def draw_roles(roles: str, rng: np.random.Generator, groups: int) -> np.ndarray:
  """[groups] bool, True for helpful groups: uniform over both roles (METHOD 1.2), or one
  role only (`game.roles`: learning probes and control games)."""
  if roles == "both":
    return rng.integers(2, size=groups) == HELPFUL
  return np.full(groups, roles == "helpful")


def fresh_prover_state(cfg: ml_collections.ConfigDict, world: arith_world.ArithWorld,
                       fns: GameFunctions, init: Players, verifier_params,
                       key: jax.Array, fit_critic: bool = True) -> dict:
  """The initial prover with a fresh optimizer state, ready for a round's prover phase.

  With GAE the separate critic starts from random weights and is first fitted to the
  initial policy under this round's reward and verifier: `critic_warmup_steps` PPO
  iterations on samples of the initial prover that update the critic only. Its
  advantages are then value estimates of this policy rather than noise from step 0 on.
  fit_critic=False skips that fit (a placeholder state, e.g. before round 0's verifier).
  """
  pg = cfg.game.ppo
  params = {"policy": init.prover_params}
  if fns.critic_warmup_step is None:
    return fns.init_prover_state(params)
  params["critic"] = fns.init_critic(jax.random.fold_in(key, CRITIC_STREAM))
  state = fns.init_prover_state(params)
  warmup = pg.critic_warmup_steps if fit_critic else 0
  for step in tqdm(range(warmup), desc="critic warm-up", leave=False, mininterval=1):
    step_key = jax.random.fold_in(jax.random.fold_in(key, CRITIC_STREAM), step + 1)
    rng = np.random.default_rng(jax.random.key_data(step_key).tolist())
    problems = rng.integers(cfg.game.prover_problems, size=pg.groups)
    helpful = draw_roles(cfg.game.roles, rng, pg.groups)
    probs = world.problems("prover", np.repeat(problems, pg.group_size))
    roles = np.repeat(np.where(helpful, HELPFUL, SNEAKY), pg.group_size)
    batch, _, _ = ppo_batch(world, fns.sample_ppo, init.prover_params, probs, roles, helpful,
                            jax.random.fold_in(step_key, 0))
    state, _, _, _ = fns.critic_warmup_step(state, init.prover_params, verifier_params, batch,
                                            np.float32(pg.beta), jax.random.fold_in(step_key, 1))
  return fns.init_prover_state({"policy": init.prover_params,
                                "critic": state["params"]["critic"]})


@dataclasses.dataclass
class ProverProgress:
  """What the prover phase needs to resume: train state, step, beta, monitor history."""

  state: dict
  step: int
  beta: float
  monitor: dict


def prover_phase(ctx: Context, round_: int, verifier_params, progress: ProverProgress,
                 save, should_stop) -> tuple[ProverProgress, str]:
  """PPO against the round's frozen verifier until a stopping rule fires.

  save(progress) is called every checkpoint_every steps; should_stop() is polled every
  step (SIGTERM) and, when true, the phase saves and raises Preempted. The divergence
  guard ends the phase with reason "diverged: ..." when the KL to the initial prover per
  solution exceeds `ppo.max_kl` or the parseable share falls below `ppo.min_parseable`
  (checked whenever device metrics are fetched, which includes every step that is then
  saved). Returns (final progress, stop reason).
  """
  g, pg = ctx.cfg.game, ctx.cfg.game.ppo
  monitor = stopping.StopMonitor(g.reward, pg.max_steps, pg.stop_window, progress.monitor)
  state, beta = progress.state, progress.beta
  roles_drawn = g.roles if rewards.USES_ROLES[g.reward] else "helpful"
  reason = None
  bar = tqdm(total=pg.max_steps, initial=progress.step, desc=f"round {round_} prover",
             leave=False, mininterval=1)
  profile = ctx.cfg.profile_steps and round_ == 0
  samples_log: list[dict] = []      # every PPO sample since the last save, kept on disk
  _drop_chunks_from(ctx, round_, progress.step)    # a kill after a flush, before its save
  for step in range(progress.step, pg.max_steps):
    if profile and step == 1:     # step 0 compiles; trace the steady state
      jax.profiler.start_trace(str(ctx.workdir / "profile"))
    if profile and step == 1 + ctx.cfg.profile_steps:
      jax.profiler.stop_trace()
    rng = ctx.rng(PPO_STREAM, round_, step)
    problems = rng.integers(g.prover_problems, size=pg.groups)
    helpful = draw_roles(roles_drawn, rng, pg.groups)
    key = ctx.key(PPO_STREAM, round_, step)
    probs = ctx.world.problems("prover", np.repeat(problems, pg.group_size))
    roles = np.repeat(np.where(helpful, HELPFUL, SNEAKY), pg.group_size)
    state, beta, scores, metrics, batch, checks, solutions = ppo_iteration(
        ctx.world, ctx.fns, state, ctx.init.prover_params, verifier_params, probs, roles,
        helpful, beta, pg.adaptive_kl, key)
    stats = stopping.StepStats.from_samples(scores, batch["correct"],
                                            np.repeat(helpful, pg.group_size))
    samples_log.append({
        "step": np.full(len(probs), step), "problem_index": np.repeat(problems, pg.group_size),
        "role": roles, "solution": solutions, "correct": batch["correct"],
        "first_error": np.array([-1 if c.first_error is None else c.first_error
                                 for c in checks]),
        "error_type": np.array([c.error_type for c in checks]),
        "validity": np.array([c.validity for c in checks]), "verifier_score": scores})
    reason = monitor.update(stats, step + 1)
    window = monitor.summary()
    host = {"parseable": float(batch["parseable"].mean()), **window,
            "helpful_accuracy": _accuracy(batch["correct"], roles, HELPFUL),
            "sneaky_accuracy": _accuracy(batch["correct"], roles, SNEAKY)}
    checkpoint_now = should_stop() or (step + 1) % g.checkpoint_every == 0
    snapshot_now = (step + 1) % g.snapshot_every == 0 or step + 1 == pg.max_steps
    # Device metrics are fetched (and checked for NaN/inf, and by the divergence guard) at
    # log steps, at the last step, and before every checkpoint and snapshot, so neither
    # ever holds a diverged state.
    fetch = ((step + 1) % ctx.cfg.log_every == 0 or reason or checkpoint_now
             or snapshot_now)
    values = ctx.writer.write(f"round_{round_}/prover", step + 1, metrics if fetch else {},
                              host)
    if fetch:
      reason = _diverged(pg, values) or reason
    bar.update(1)
    progress = ProverProgress(state, step + 1, beta, monitor.state())
    if snapshot_now or reason:
      snapshots.save(snapshots.prover_path(ctx.workdir, round_, step + 1),
                     state["params"]["policy"])
    if reason:
      break
    if checkpoint_now:
      _flush(ctx, round_, samples_log)
      save(progress)
      if should_stop():
        bar.close()
        raise Preempted(round_, "prover", step + 1)
  bar.close()
  _flush(ctx, round_, samples_log)
  if profile and 1 < progress.step <= ctx.cfg.profile_steps:
    jax.profiler.stop_trace()
  return progress, reason or "step_budget"


def ppo_batch(world: arith_world.ArithWorld, sample_fn, policy_params, probs, roles,
              helpful: np.ndarray, key: jax.Array):
  """Sample one PPO batch (rows grouped by (problem, role)), grade and step-check it.
  Returns (the prover step's batch dict, the check results, the solution tokens)."""
  prompts = world.prompts(probs, roles)
  grouped = prompts.reshape(len(helpful), -1, prompts.shape[1])
  if not (grouped == grouped[:, :1]).all():     # the prover step shares each group's prompt
    raise ValueError("a PPO batch's rows must come in groups of one (problem, role) prompt")
  samples = sample_fn(policy_params, prompts, key)
  solutions = np.asarray(jax.device_get(samples.tokens))
  checks = [world.check(p, s) for p, s in zip(probs, solutions)]
  seqs = world.sequences(prompts, solutions)
  batch = {"tokens": seqs.tokens, "verifier_tokens": world.verifier_view(seqs.tokens),
           "other_role_tokens": world.other_role_view(seqs.tokens),
           "kv_mask": seqs.kv_mask, "loss_mask": seqs.loss_mask,
           "correct": np.array([c.correct for c in checks]),
           "parseable": np.array(["format" not in c.errors for c in checks]),
           "helpful": helpful}
  return batch, checks, solutions


def ppo_iteration(world: arith_world.ArithWorld, fns: GameFunctions, state, ref_params,
                  verifier_params, probs, roles, helpful: np.ndarray, beta: float,
                  adaptive_kl: bool, key: jax.Array):
  """Sample, grade and check one PPO batch, then take the jitted PPO step on it.
  Returns (state, beta, scores [N] on host, device metrics, batch, checks, solutions)."""
  batch, checks, solutions = ppo_batch(world, fns.sample_ppo, state["params"]["policy"],
                                       probs, roles, helpful, jax.random.fold_in(key, 0))
  state, beta_arr, scores, metrics = fns.prover_step(
      state, ref_params, verifier_params, batch, np.float32(beta), jax.random.fold_in(key, 1))
  beta = float(beta_arr) if adaptive_kl else beta
  return (state, beta, np.asarray(jax.device_get(scores)), metrics, batch, checks,
          solutions)


def _diverged(pg, values: dict) -> str | None:
  """The divergence guard's verdict on one step's fetched metrics, or None."""
  if values.get("kl", 0.0) > pg.max_kl:
    return (f"diverged: KL to the initial prover {values['kl']:.1f} nats per solution > "
            f"game.ppo.max_kl={pg.max_kl}")
  if values.get("parseable", 1.0) < pg.min_parseable:
    return (f"diverged: parseable share {values['parseable']:.3f} < "
            f"game.ppo.min_parseable={pg.min_parseable}")
  return None


def _drop_chunks_from(ctx: Context, round_: int, step: int) -> None:
  """Remove the samples of PPO steps >= `step` from the round's rollout chunks (written
  by a run that was killed after flushing them but before its checkpoint): the resumed run
  writes them again, so each step is stored exactly once."""
  if jax.process_index() != 0 or not rollout_dir(ctx, round_).exists():
    return
  for path in sorted(rollout_dir(ctx, round_).glob("ppo_steps_*.npz")):
    with np.load(path) as chunk:
      arrays = dict(chunk)
    keep = arrays["step"] < step
    if keep.all():
      continue
    path.unlink()
    if keep.any():
      last = int(arrays["step"][keep][-1])
      rollout.save_arrays(path.with_name(f"ppo_steps_{int(arrays['step'][0]):05d}_"
                                         f"{last:05d}.npz"),
                          {k: v[keep] for k, v in arrays.items()})


def rollout_dir(ctx: Context, round_: int) -> pathlib.Path:
  return ctx.workdir / "rollouts" / f"round_{round_}"


def _flush(ctx: Context, round_: int, samples_log: list[dict]) -> None:
  """Write the PPO samples of the steps since the last flush as one chunk, then forget them.
  Chunks are named by their step range, so a resumed run rewrites the same files."""
  if not samples_log:
    return
  arrays = {k: np.concatenate([s[k] for s in samples_log]) for k in samples_log[0]}
  first, last = int(arrays["step"][0]), int(arrays["step"][-1])
  rollout.save_arrays(rollout_dir(ctx, round_) / f"ppo_steps_{first:05d}_{last:05d}.npz",
                      arrays)
  samples_log.clear()


def _accuracy(correct: np.ndarray, roles: np.ndarray, role: int) -> float:
  sel = roles == role
  return float(correct[sel].mean()) if sel.any() else float("nan")


def evaluate_round(ctx: Context, round_: int, policy_params, verifier_params) -> dict:
  """Held-out test problems: accuracy of both roles and the verifier on the round's prover."""
  g = ctx.cfg.game
  index, roles = rollout.both_roles(g.eval_problems, g.eval_samples_per_role)
  ro = rollout.sample_rollouts(ctx.world, ctx.fns.sample_batch, policy_params, "test", index,
                               roles, ctx.key(EVAL_STREAM, round_), g.sample_batch)
  scores = rollout.score_sequences(ctx.world, ctx.fns.score, verifier_params, ro.tokens,
                                   g.sample_batch)
  rollout.save_arrays(rollout_dir(ctx, round_) / "eval_test.npz",
                      {**dataclasses.asdict(ro), "verifier_score": scores})
  helpful = ro.role == HELPFUL
  acc, _, _ = rollout.pairwise_accuracy(ro.problem_index, ro.correct, scores)
  hc, si = helpful & ro.correct, ~helpful & ~ro.correct
  return {
      "helpful_accuracy": float(ro.correct[helpful].mean()),
      "sneaky_accuracy": float(ro.correct[~helpful].mean()),
      "test_verifier_pairwise_accuracy": acc,
      "test_verifier_auc": rollout.roc_auc(ro.correct, scores),
      "helpful_correct_score": float(scores[hc].mean()) if hc.any() else float("nan"),
      "sneaky_incorrect_score": float(scores[si].mean()) if si.any() else float("nan"),
      "sneaky_fool_rate": _fool_rate(scores, hc, si),
      "sneaky_unparseable": float(np.mean([e == "format" for e, h in zip(ro.error_type,
                                                                          helpful) if not h])),
  }


def _fool_rate(scores: np.ndarray, hc: np.ndarray, si: np.ndarray) -> float:
  """Fraction of sneaky-incorrect solutions scored above the median helpful-correct one."""
  if not hc.any() or not si.any():
    return float("nan")
  return float((scores[si] > np.median(scores[hc])).mean())
