"""Checkability training (Kirchner et al. 2024; METHOD 1): the host-side round loop.

    for round i in range(rounds):
      verifier phase: train V_i on a balanced draw from pool sources 0..i
      prover phase:   PPO of the role-conditioned prover against frozen V_i
      eval phase:     held-out test accuracy and verifier numbers; the round's prover
                      samples pool source i + 1 for the next verifier

Both players restart from the initial players every round (K's design; warm-start
switches exist for ablations). The only thing that carries over is the pool.

Resume order (after a kill or SIGTERM, the same command continues): read the newest
intact checkpoint -> its Progress says (round, phase, PPO step) -> make sure the pool
sources it counts exist -> continue that phase. Every phase boundary is checkpointed before
the next phase starts, and the PPO phase also every `checkpoint_every` steps; all
randomness is a function of (seed, round, step), so a resumed run reproduces the
uninterrupted one exactly.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time

import jax

from pvg_jax import config as config_lib
from pvg_jax import files, players, preemption, profiling, worlds
from pvg_jax.games import jitted, phases, rounds, snapshots
from pvg_jax.games import state as state_lib
from pvg_jax.games.state import GameCheckpointer, Progress
from pvg_jax.metrics import MetricWriter
from pvg_jax.models import functional
from pvg_jax.verifier.pool import SamplePool


class CompileCounter:
  """Counts XLA backend compilations (to show later rounds compile nothing)."""

  def __init__(self):
    self.count = 0
    jax.monitoring.register_event_duration_secs_listener(self._listen)

  def _listen(self, event: str, duration: float, **kwargs) -> None:
    del duration, kwargs
    if event == "/jax/core/compile/backend_compile_duration":
      self.count += 1


class CheckabilityGame:
  def __init__(self, cfg, workdir: pathlib.Path, mesh, writer: MetricWriter):
    self.cfg, self.workdir, self.mesh = cfg, workdir, mesh
    self.compiles = CompileCounter()
    world = worlds.make(cfg)
    init = players.initial_players(cfg, workdir, mesh, writer)
    fns = jitted.build(cfg, world, init.prover_spec, init.verifier_spec, mesh)
    self.profile = profiling.StepProfile(cfg.profile_steps) if cfg.profile_steps else None
    if self.profile is not None:
      fns = profiling.wrap_game_functions(self.profile, fns)
    self.ctx = phases.Context(cfg, world, fns, init, SamplePool(workdir / "pool"), writer,
                               workdir)
    self.ckpt = GameCheckpointer(workdir / "checkpoints")
    self.timing: dict = {"initial_players": init.timing}

  # -- state -------------------------------------------------------------------------------

  def _fresh_prover_state(self, round_: int, verifier_params, fit_critic: bool = True):
    """Round `round_`'s starting prover: the initial one (critic fitted to it, with GAE)."""
    ctx = self.ctx
    return phases.fresh_prover_state(self.cfg, ctx.world, ctx.fns, ctx.init, verifier_params,
                                     ctx.key(phases.CRITIC_STREAM, round_), fit_critic)

  def _abstract(self):
    fns = self.ctx.fns
    as_struct = lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)  # noqa: E731
    params = {"policy": functional.abstract_params(fns.prover_spec)}
    if fns.critic_spec is not None:
      params["critic"] = functional.abstract_params(fns.critic_spec)
    prover = jax.eval_shape(fns.init_prover_state, params)
    verifier = functional.abstract_params(fns.verifier_spec)
    return {"prover": jax.tree.map(as_struct, prover, fns.ppo_shardings),
            "verifier": jax.tree.map(as_struct, verifier,
                                     fns.verifier_shardings["params"])}

  def _report_profile(self) -> None:
    table = self.profile.report(self.workdir / "profile" / "steps.json", self.mesh.size,
                                config_lib.compute_dtype(self.cfg))
    if table is not None and jax.process_index() == 0:
      print(table, flush=True)

  # -- the loop (pvg_jax.games.rounds) -------------------------------------------------------

  phases = state_lib.PHASES       # verifier, prover, eval

  def fresh(self) -> dict:
    """Before round 0: a placeholder prover (its critic is fitted once V_0 exists)."""
    return {"prover": self._fresh_prover_state(0, self.ctx.init.verifier_params, False),
            "verifier": self.ctx.init.verifier_params}

  def abstract(self) -> dict:
    return self._abstract()

  def run(self) -> dict:
    """Play (or resume) the game. SIGTERM (pvg_jax.preemption, installed by the caller) is
    honoured within one optimizer or sampling step of any phase: the PPO phase saves its
    current step; the others stop and resume from the checkpoint that began them (they
    are deterministic, so the resumed run is identical). Raises Preempted."""
    try:
      final = rounds.play(self, self.ckpt, self.cfg.game.rounds, self._start)
    finally:
      self.ckpt.close()
    return {"initial_players": self.ctx.init.report, "rounds": final.rounds}

  def _start(self, arrays, progress: Progress, save):
    """Pool source 0 (the initial prover's samples) exists before the first verifier phase,
    and every source the checkpoint counts is on disk."""
    ctx = self.ctx
    if progress.pool_sources == 0:
      phases.sample_pool_source(ctx, 0, ctx.init.prover_params)
      progress = dataclasses.replace(progress, beta=self.cfg.game.ppo.beta, pool_sources=1)
      save(arrays, progress)
    for source in range(progress.pool_sources):
      if not ctx.pool.has(source):
        raise FileNotFoundError(f"checkpoint counts {progress.pool_sources} pool sources "
                                f"but {ctx.pool.path(source)} is missing")
    return arrays, progress

  def run_phase(self, phase: str, r: int, arrays, progress: Progress, save):
    self.timing.setdefault(r, {"compiles_before": self.compiles.count, "start": time.time()})
    return getattr(self, f"_{phase}_phase")(r, arrays, progress, save)

  def _verifier_phase(self, r: int, arrays, progress: Progress, save):
    g = self.cfg.game
    verifier, results = phases.verifier_phase(self.ctx, r, arrays["verifier"])
    snapshots.save(snapshots.verifier_path(self.workdir, r), verifier)
    prover = (arrays["prover"] if g.warm_start_prover and r > 0
              else self._fresh_prover_state(r, verifier))
    return {"prover": prover, "verifier": verifier}, dataclasses.replace(
        progress, ppo_step=0, beta=g.ppo.beta, monitor={}, current=results)

  def _prover_phase(self, r: int, arrays, progress: Progress, save):
    def save_step(p: phases.ProverProgress, verifier=arrays["verifier"], base=progress):
      save({"prover": p.state, "verifier": verifier}, dataclasses.replace(
          base, ppo_step=p.step, beta=p.beta, monitor=p.monitor))
    start = phases.ProverProgress(arrays["prover"], progress.ppo_step, progress.beta,
                                  progress.monitor)
    final, reason = phases.prover_phase(self.ctx, r, arrays["verifier"], start, save_step,
                                        preemption.requested)
    if reason.startswith("diverged"):
      print(f"round {r}: the prover {reason}; the round is marked diverged in "
            "summary.json and the next round restarts from the initial prover", flush=True)
    if r == 0 and self.profile is not None:
      self._report_profile()
    return {"prover": final.state, "verifier": arrays["verifier"]}, dataclasses.replace(
        progress, ppo_step=final.step, beta=final.beta, monitor=final.monitor,
        current={**progress.current, "ppo_steps": final.step, "stop_reason": reason,
                 "diverged": reason.startswith("diverged"),
                 "sneaky_below_10pct_step": final.monitor.get("sneaky_below_step")})

  def _eval_phase(self, r: int, arrays, progress: Progress, save):
    g = self.cfg.game
    policy = arrays["prover"]["params"]["policy"]
    results = {"round": r, **progress.current,
               **phases.evaluate_round(self.ctx, r, policy, arrays["verifier"])}
    if r + 1 < g.rounds:
      phases.sample_pool_source(self.ctx, r + 1, policy)
    timing = self.timing[r]
    timing.update(seconds=time.time() - timing.pop("start"),
                  compiles=self.compiles.count - timing.pop("compiles_before"))
    _print_round(results)
    return arrays, dataclasses.replace(
        progress, ppo_step=0, monitor={}, current={}, rounds=[*progress.rounds, results],
        pool_sources=max(progress.pool_sources, min(r + 2, g.rounds)))


def _print_round(r: dict) -> None:
  print(f"round {r['round']}: helpful {r['helpful_accuracy']:.3f} sneaky "
        f"{r['sneaky_accuracy']:.3f} | verifier held-out pairwise "
        f"{r['verifier_heldout_pairwise_accuracy']:.3f} | scores helpful-correct "
        f"{r['helpful_correct_score']:+.2f} sneaky-incorrect "
        f"{r['sneaky_incorrect_score']:+.2f} | {r['ppo_steps']} PPO steps "
        f"({r['stop_reason']})")


def write_outputs(workdir: pathlib.Path, summary: dict, timing: dict) -> None:
  """summary.json (deterministic: identical for a resumed and an uninterrupted run) and
  timing.json (wall times and compile counts, which are not)."""
  if jax.process_index() != 0:
    return
  files.atomic_write_text(workdir / "summary.json", json.dumps(summary, indent=1,
                                                               sort_keys=True))
  files.atomic_write_text(workdir / "timing.json", json.dumps(
      {str(k): v for k, v in timing.items()}, indent=1))
