"""The host side of the toy games: data, chunks of jitted play, checkpoints, audit, summary.

`train(cfg, workdir)` (what `python -m pvg_jax.main --config configs/anil.py` runs) plays,
for each task and formulation, `cfg.seeds` games at once and writes

    <workdir>/checkpoints/<task>.<formulation>/<step>/   Orbax state of every seed (latest)
    <workdir>/results/<task>.<formulation>.json          per-seed evaluation and audit
    <workdir>/metrics.jsonl, tensorboard/                per-chunk training metrics
    <workdir>/summary.json                               the table (deterministic)
    <workdir>/timing.json                                wall seconds per run

A killed run resumes from its last checkpoint (chunks are `game.chunk` outer steps) and ends
with the same summary.json: the state holds every seed's RNG key. All seeds of a task start
from the same initial players and batch stream in every formulation (the key depends on
task and seed only), so formulations are compared on paired seeds.
"""

from __future__ import annotations

import contextlib
import json
import math
import pathlib
import shutil
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from pvg_jax import checkpoint, cli, files, preemption
from pvg_jax.anil import audit, game, players, tasks
from pvg_jax.config import ConfigError
from pvg_jax.metrics import MetricWriter
from pvg_jax.report import stats

TOLERANCE = 0.05   # "sound": soundness error <= tol; "complete": within tol of the optimum
METRICS = ("completeness", "soundness_error", "soundness_error_audit",
           "soundness_error_pointer", "game_prover_accept_false", "verifier_accuracy")


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Raise ConfigError naming the first impossible key."""
  def need(ok, key, msg):
    if not ok:
      raise ConfigError(f"config.{key}: {msg}")
  need(len(cfg.tasks) > 0 and all(t in tasks.TASKS for t in cfg.tasks), "tasks",
       f"{tuple(cfg.tasks)} must be a non-empty subset of {tasks.TASKS}")
  bad = [f for f in cfg.formulations if f not in game.FORMULATIONS]
  need(len(cfg.formulations) > 0 and not bad, "formulations",
       f"{bad or '()'} not in {game.FORMULATIONS}")
  need(cfg.game.message in players.MESSAGES, "game.message",
       f"{cfg.game.message!r} is not one of {players.MESSAGES}")
  for key in ("seeds", "data.train", "data.test", "players.prover_hidden",
              "players.verifier_hidden", "game.steps", "game.chunk", "game.batch_size",
              "game.inner_steps", "audit.restarts", "audit.steps", "audit.batch_size",
              "bec.n", "bec.run", "ftp.size"):
    value = cfg
    for part in key.split("."):
      value = value[part]
    need(isinstance(value, int) and value > 0, key, f"must be a positive integer, got {value!r}")
  need(cfg.game.steps % cfg.game.chunk == 0, "game.chunk",
       f"must divide game.steps ({cfg.game.steps}) so every chunk has one compiled shape")
  need(isinstance(cfg.game.log_every, int) and cfg.game.log_every > 0
       and cfg.game.chunk % cfg.game.log_every == 0, "game.log_every",
       f"must be a positive divisor of game.chunk ({cfg.game.chunk})")
  need(cfg.game.batch_size % 2 == 0, "game.batch_size", "must be even (half each label)")
  need(cfg.bec.run <= cfg.bec.n, "bec.run", f"must be <= bec.n ({cfg.bec.n})")
  need(cfg.ftp.size >= 3, "ftp.size", "must be >= 3 (a plus is 3x3)")
  for key in ("bec.density", "bec.erasure", "ftp.density"):
    group, name = key.split(".")
    need(0 < cfg[group][name] < 1, key, f"must be in (0, 1), got {cfg[group][name]}")


def _split_seed(cfg, task: str, split: str) -> int:
  return cfg.seed * 100 + 10 * tasks.TASKS.index(task) + ("train", "test").index(split)


def device_split(split: tasks.Split) -> dict:
  """A split as device arrays, with the indices of each label for balanced batches."""
  return {"prover_input": jnp.asarray(split.prover_input), "windows": jnp.asarray(split.windows),
          "label": jnp.asarray(split.label), "pos": jnp.asarray(np.flatnonzero(split.label == 1)),
          "neg": jnp.asarray(np.flatnonzero(split.label == 0))}


def _negatives(data: dict) -> dict:
  return {k: data[k][data["neg"]] for k in ("prover_input", "windows", "label")}


def make_setup(cfg, task: str, formulation: str) -> game.Setup:
  task_cfg = cfg[task]
  n_win = tasks.num_windows(task, task_cfg)
  if task == "bec":
    prover = players.Spec("mlp_prover", (2 * task_cfg.n,), n_win, cfg.players.prover_hidden)
    window = 3 * task_cfg.run
  else:
    prover = players.Spec("patch_prover", (n_win, 9), n_win, cfg.players.prover_hidden)
    window = 9
  verifier = players.Spec("verifier", (window,), 1, cfg.players.verifier_hidden)
  g = cfg.game
  return game.Setup(prover, verifier, formulation, g.message, g.temperature, g.batch_size,
                    g.inner_steps, g.inner_lr, g.lr)


def _initial_states(cfg, task: str, setup: game.Setup) -> game.State:
  keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(cfg.seed + s), tasks.TASKS.index(task))
                    for s in range(cfg.seeds)])
  return jax.vmap(lambda k: game.init_state(setup, k))(keys)


def _latest(ckpt_root: pathlib.Path) -> pathlib.Path | None:
  done = [p for p in ckpt_root.glob("[0-9]*") if (p / "meta.json").exists()]
  return max(done, key=lambda p: int(p.name)) if done else None


def play(cfg, task: str, formulation: str, data: dict, workdir: pathlib.Path,
         writer: MetricWriter) -> game.State:
  """Train every seed's game, resuming from the latest checkpoint; returns final states."""
  setup = make_setup(cfg, task, formulation)
  name = f"{task}.{formulation.replace(':', '.')}"
  root, key = workdir / "checkpoints" / name, f"anil:{name}"
  states = _initial_states(cfg, task, setup)
  latest = _latest(root)
  if latest is not None:
    states, _ = checkpoint.restore(latest, states, key)
  start = int(np.asarray(states.step)[0])
  chunks = range(start // cfg.game.chunk, cfg.game.steps // cfg.game.chunk)
  with tqdm.tqdm(total=cfg.game.steps, initial=start, desc=f"{task} {formulation}",
                 leave=False) as bar:
    for _ in chunks:
      states, metrics = game.train_chunk(setup, states, data, cfg.game.chunk)
      step = int(np.asarray(states.step)[0])
      metrics = jax.device_get(metrics)                          # [seeds, chunk] each
      every = cfg.game.log_every
      for end in range(every, cfg.game.chunk + 1, every):        # one record per bin
        values = writer.write(name, step - cfg.game.chunk + end,
                              {k: v[:, end - every:end].mean() for k, v in metrics.items()})
      bar.update(cfg.game.chunk)
      bar.set_postfix(acc_true=f"{values['accept_true']:.2f}",
                      acc_false=f"{values['accept_false']:.2f}")
      checkpoint.save(root / f"{step:06d}", states, key)
      if jax.process_index() == 0:
        for old in root.glob("[0-9]*"):
          if old.name != f"{step:06d}":
            shutil.rmtree(old, ignore_errors=True)
      if preemption.requested():
        raise cli.Preempted(f"SIGTERM: checkpointed {name} at outer step {step}; run the "
                            "same command to resume.")
  return states


def measure(cfg, task: str, formulation: str, states: game.State, train: dict,
            test: dict) -> dict:
  """Per-seed completeness and soundness (module pvg_jax.anil.audit)."""
  setup = make_setup(cfg, task, formulation)
  spec = audit.AuditSpec(cfg.audit.restarts, cfg.audit.steps, cfg.audit.lr,
                         cfg.audit.batch_size)
  evals = jax.vmap(lambda p: audit.evaluate(setup, p, test))(states.params)
  keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(cfg.seed + s), 1000)
                    for s in range(cfg.seeds)])
  attacks = jax.vmap(lambda v, k: audit.audit(setup, spec, v, _negatives(train),
                                              _negatives(test), k))(
      states.params["verifier"], keys)                          # [seeds, restarts]
  out = {k: np.asarray(v).tolist() for k, v in evals.items()}
  out["attack_accept_false"] = np.asarray(attacks).tolist()
  out["soundness_error_audit"] = np.asarray(attacks).max(-1).tolist()
  out["soundness_error"] = np.maximum(out["soundness_error_audit"],
                                      out["soundness_error_pointer"]).tolist()
  return out


def interval(values) -> dict:
  """Mean and 95% Student-t interval over seeds (report/stats.py; n < 2: no interval)."""
  t = stats.t_interval(values)
  lo, hi = (t.low, t.high) if t.n >= 2 else (math.nan, math.nan)
  return {"mean": t.mean, "lo": lo, "hi": hi, "seeds": [float(v) for v in values]}


def _atomic_json(path: pathlib.Path, obj) -> None:
  if jax.process_index() == 0:
    files.atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True))


REFERENCE = "verifier_leads:unrolled"   # the formulation the paper's claim is about


def summarize(cfg, results: dict, optimum: dict) -> dict:
  """summary.json: per task and formulation, every metric's mean and interval over seeds,
  whether the protocol is sound and complete within TOLERANCE, and (when REFERENCE was
  played) each formulation's paired difference to it over seeds: seeds share initial
  players and batches across formulations, so the per-seed difference removes what they
  have in common (with 3 seeds, a percentile bootstrap would only give [min, max])."""
  out = {"game": "anil", "seeds": cfg.seeds, "tolerance": TOLERANCE, "reference": REFERENCE,
         "tasks": {}}
  for task, by_form in results.items():
    rows = {}
    for form, res in by_form.items():
      row = {m: interval(res[m]) for m in METRICS}
      row["sound"] = row["soundness_error"]["mean"] <= TOLERANCE
      row["complete"] = row["completeness"]["mean"] >= optimum[task] - TOLERANCE
      if REFERENCE in by_form and form != REFERENCE:
        ref = by_form[REFERENCE]
        row["minus_reference"] = {
            m: interval(np.subtract(res[m], ref[m])) for m in ("completeness",
                                                              "soundness_error")}
      rows[form] = row
    out["tasks"][task] = {"optimal_sound_completeness": optimum[task], "formulations": rows}
  return out


def print_table(summary: dict) -> None:
  print(f"{'task':<5} {'formulation':<24} {'complete':>9} {'sound err':>9} {'audit':>7} "
        f"{'pointer':>7} {'V acc':>6}  verdict")
  for task, t in summary["tasks"].items():
    for form, r in t["formulations"].items():
      verdict = ("sound" if r["sound"] else "unsound") + ", " + (
          "complete" if r["complete"] else "incomplete")
      print(f"{task:<5} {form:<24} {r['completeness']['mean']:9.3f} "
            f"{r['soundness_error']['mean']:9.3f} {r['soundness_error_audit']['mean']:7.3f} "
            f"{r['soundness_error_pointer']['mean']:7.3f} "
            f"{r['verifier_accuracy']['mean']:6.3f}  {verdict}")
    print(f"{task:<5} {'(best sound protocol)':<24} {t['optimal_sound_completeness']:9.3f}")


def train(cfg, workdir: str | pathlib.Path, allow_config_change: bool = False) -> dict:
  """Every task and formulation (resuming what is done); returns summary.json's content."""
  from pvg_jax.train import check_workdir_config, write_config
  validate(cfg)
  workdir = pathlib.Path(workdir)
  rewrite = check_workdir_config(cfg, workdir, allow_config_change)
  workdir.mkdir(parents=True, exist_ok=True)
  if rewrite:
    write_config(cfg, workdir)
  writer = MetricWriter(workdir)
  results, optimum, timing = {}, {}, {}
  lock = files.WorkdirLock(workdir) if jax.process_index() == 0 else contextlib.nullcontext()
  with lock, preemption.handler():
    try:
      for task in cfg.tasks:
        train_split = tasks.make(task, cfg[task], cfg.data.train,
                                 _split_seed(cfg, task, "train"))
        test_split = tasks.make(task, cfg[task], cfg.data.test, _split_seed(cfg, task, "test"))
        optimum[task] = float(test_split.certified[test_split.label == 1].mean())
        train_data, test_data = device_split(train_split), device_split(test_split)
        results[task] = {}
        for form in cfg.formulations:
          path = workdir / "results" / f"{task}.{form.replace(':', '.')}.json"
          t0 = time.time()
          if not path.exists():
            states = play(cfg, task, form, train_data, workdir, writer)
            _atomic_json(path, measure(cfg, task, form, states, train_data, test_data))
          results[task][form] = json.loads(path.read_text())
          timing[f"{task}.{form}"] = time.time() - t0
    finally:
      writer.close()
  summary = summarize(cfg, results, optimum)
  _atomic_json(workdir / "summary.json", summary)
  _atomic_json(workdir / "timing.json", timing)
  print_table(summary)
  return summary
