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

from pvg_jax import cli, files, players, preemption, profiling, worlds
from pvg_jax import config as config_lib
from pvg_jax.games import jitted, phases, snapshots
from pvg_jax.games.state import GameCheckpointer, Preempted, Progress
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
    self._saved: Progress | None = None      # the latest checkpoint's progress
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

  def _save(self, arrays, progress: Progress) -> None:
    self.ckpt.save(arrays, progress)
    self._saved = progress

  def _report_profile(self) -> None:
    table = self.profile.report(self.workdir / "profile" / "steps.json", self.mesh.size,
                                config_lib.compute_dtype(self.cfg))
    if table is not None and jax.process_index() == 0:
      print(table, flush=True)

  # -- the loop ----------------------------------------------------------------------------

  def run(self) -> dict:
    """Play (or resume) the game. SIGTERM (pvg_jax.preemption, installed by the caller) is
    honoured within one optimizer or sampling step of any phase: the PPO phase saves its
    current step; the others stop and resume from the checkpoint that began them (they
    are deterministic, so the resumed run is identical). Raises Preempted."""
    try:
      return self._run()
    except cli.Preempted as e:
      if isinstance(e, Preempted) or self._saved is None:
        raise
      s = self._saved
      raise Preempted(s.round, s.phase, s.ppo_step) from None
    finally:
      self.ckpt.close()

  def _checkpoint_and_exit_if_asked(self, arrays, progress: Progress) -> None:
    if preemption.requested():
      self._save(arrays, progress)
      raise Preempted(progress.round, progress.phase, progress.ppo_step)

  def _run(self) -> dict:
    ctx, g = self.ctx, self.cfg.game
    restored = self.ckpt.latest(self._abstract())
    if restored is None:
      arrays = {"prover": self._fresh_prover_state(0, ctx.init.verifier_params, False),
                "verifier": ctx.init.verifier_params}
      progress = Progress(beta=g.ppo.beta)
    else:
      arrays, progress = restored
      self._saved = progress
    if progress.pool_sources == 0:
      phases.sample_pool_source(ctx, 0, ctx.init.prover_params)
      progress.pool_sources = 1
      self._save(arrays, progress)
    for source in range(progress.pool_sources):   # the pool must hold what progress counts
      if not ctx.pool.has(source):
        raise FileNotFoundError(f"checkpoint counts {progress.pool_sources} pool sources "
                                f"but {ctx.pool.path(source)} is missing")

    while progress.round < g.rounds:
      r = progress.round
      timing = self.timing.setdefault(r, {"compiles_before": self.compiles.count,
                                          "start": time.time()})
      self._checkpoint_and_exit_if_asked(arrays, progress)
      if progress.phase == "verifier":
        verifier, results = phases.verifier_phase(ctx, r, arrays["verifier"])
        snapshots.save(snapshots.verifier_path(self.workdir, r), verifier)
        prover = (arrays["prover"] if g.warm_start_prover and r > 0
                  else self._fresh_prover_state(r, verifier))
        arrays = {"prover": prover, "verifier": verifier}
        progress = dataclasses.replace(progress, phase="prover", ppo_step=0, beta=g.ppo.beta,
                                       monitor={}, current=results)
        self._save(arrays, progress)

      if progress.phase == "prover":
        def save(p: phases.ProverProgress, verifier=arrays["verifier"], base=progress):
          self._save({"prover": p.state, "verifier": verifier}, dataclasses.replace(
              base, ppo_step=p.step, beta=p.beta, monitor=p.monitor))
        start = phases.ProverProgress(arrays["prover"], progress.ppo_step, progress.beta,
                                      progress.monitor)
        final, reason = phases.prover_phase(ctx, r, arrays["verifier"], start, save,
                                            preemption.requested)
        arrays = {"prover": final.state, "verifier": arrays["verifier"]}
        progress = dataclasses.replace(
            progress, phase="eval", ppo_step=final.step, beta=final.beta,
            monitor=final.monitor,
            current={**progress.current, "ppo_steps": final.step, "stop_reason": reason,
                     "diverged": reason.startswith("diverged"),
                     "sneaky_below_10pct_step": final.monitor.get("sneaky_below_step")})
        if reason.startswith("diverged"):
          print(f"round {r}: the prover {reason}; the round is marked diverged in "
                "summary.json and the next round restarts from the initial prover",
                flush=True)
        self._save(arrays, progress)
        if r == 0 and self.profile is not None:
          self._report_profile()

      if progress.phase == "eval":
        policy = arrays["prover"]["params"]["policy"]
        results = {"round": r, **progress.current,
                   **phases.evaluate_round(ctx, r, policy, arrays["verifier"])}
        if r + 1 < g.rounds:
          phases.sample_pool_source(ctx, r + 1, policy)
        progress = dataclasses.replace(
            progress, round=r + 1, phase="verifier", ppo_step=0, monitor={}, current={},
            rounds=[*progress.rounds, results],
            pool_sources=max(progress.pool_sources, min(r + 2, g.rounds)))
        self._save(arrays, progress)
        timing.update(seconds=time.time() - timing.pop("start"),
                      compiles=self.compiles.count - timing.pop("compiles_before"))
        _print_round(results)
    return {"initial_players": ctx.init.report, "rounds": progress.rounds}


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
