"""The initial players (round -1): prover SFT, verifier pretraining, evaluation, cache.

- Prover: one network for both roles, trained by SFT on role-conditioned data: the helpful
  role imitates canonical solutions, the sneaky role flaw-injected ones (K's prompted
  "dishonest mode", made trainable here).
- Verifier: pretrained on unlimited generator pairs (the canonical and a flaw-injected
  solution of the same verifier-split problem) with the Bradley-Terry + lambda V^2 loss of
  METHOD 1.1 - the analogue of K's pretrained verifier.
- Each is cached on its own in <init dir>/prover_<key>/ and <init dir>/verifier_<key>/
  (init dir: `config.init_players_dir`, default <workdir>/init_players), key = hash of
  everything that determines that player (seed, world, its size and training config), so
  runs that differ only in the game or in the other player reuse it (seeds of a baseline,
  points of a verifier-size sweep). A cache whose key, structure or checksum does not match
  is rebuilt, never used. The held-out report on the pair is cached as report_<key>.json.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pathlib
import shutil
import time

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from pvg_jax import checkpoint, cli, files, preemption, rollout, sharding, worlds
from pvg_jax import config as config_lib
from pvg_jax.metrics import MetricWriter
from pvg_jax.models import functional, hf, sampler
from pvg_jax.models.transformer import ModelSpec
from pvg_jax.training import state as train_state
from pvg_jax.training import steps
from pvg_jax.worlds.arith import problems
from pvg_jax.worlds.arith import world as arith_world

FLAW_STREAM, SFT_STREAM, VERIFIER_STREAM, EVAL_STREAM = 1, 2, 3, 4
CACHE_FORMAT = 5  # bump when what a cache holds changes; old caches are then rebuilt


@dataclasses.dataclass
class Players:
  prover_spec: ModelSpec
  prover_params: dict
  verifier_spec: ModelSpec
  verifier_params: dict
  report: dict                                   # deterministic numbers (summary.json)
  timing: dict = dataclasses.field(default_factory=dict)   # wall times (timing.json)


def player_specs(cfg: ml_collections.ConfigDict, world) -> tuple[ModelSpec, ModelSpec]:
  """The players' architectures: a named size (models/sizes.py) over the world's
  vocabulary, or, with `<player>.checkpoint` set, the Hugging Face checkpoint's own (its
  config.json; the world's tokenizer supplies the pad id, which is never emitted)."""
  vocab = world.tokenizer.size
  dtype = config_lib.compute_dtype(cfg)
  specs = []
  for player, heads in (("prover", ("lm",)), ("verifier", ("score",))):
    path = cfg[player].get("checkpoint", "")
    if path:
      config = hf.read_config(path)
      spec = hf.spec_from_config(config, heads, dtype, str(pathlib.Path(path) / "config.json"))
      if spec.num_tokens < vocab:
        raise cli.UserError(f"{path}: vocab_size {spec.num_tokens} is smaller than the "
                            f"tokenizer's {vocab} tokens")
      specs.append(dataclasses.replace(spec, pad_id=world.tokenizer.pad_id))
    else:
      specs.append(functional.make_spec(cfg[player].size, vocab, heads, dtype))
  return specs[0], specs[1]


def initial_params(cfg: ml_collections.ConfigDict, player: str, spec: ModelSpec, mesh: Mesh,
                   key: jax.Array):
  """Where SFT / pretraining of `player` starts: its checkpoint if one is configured (heads
  it lacks drawn from `key`), else a random init from `key`."""
  path = cfg[player].get("checkpoint", "")
  if path:
    return hf.load(path, spec.heads, mesh, sharding.DEFAULT_RULES, key, spec.compute_dtype)[1]
  return functional.init_params(spec, key, mesh, sharding.DEFAULT_RULES)


CACHE_PARTS = {"prover": ("seed", "world", "prover", "sft"),
               "verifier": ("seed", "world", "verifier", "verifier_pretrain"),
               "pair": ("seed", "world", "prover", "verifier", "sft", "verifier_pretrain",
                        "eval")}


def cache_key(cfg: ml_collections.ConfigDict, player: str = "pair",
              parts: tuple[str, ...] | None = None) -> str:
  """Hash of every config entry that determines `player` (prover, verifier, or the pair
  and its held-out report), or of the top-level entries `parts` (other games' players)."""
  parts = {k: cfg[k].to_dict() if isinstance(cfg[k], ml_collections.ConfigDict) else cfg[k]
           for k in (parts or CACHE_PARTS[player])}
  if "world" in parts:                              # single-style caches keep their keys
    parts["world"] = config_lib.without_legacy_world_keys(parts["world"])
  parts["format"] = CACHE_FORMAT
  dtype = config_lib.compute_dtype(cfg)
  if dtype != config_lib.DEFAULT_COMPUTE_DTYPE:   # float32 caches keep the keys they had
    parts["compute_dtype"] = dtype
  return hashlib.sha256(json.dumps(parts, sort_keys=True, default=list).encode()).hexdigest()[:16]


def init_dir(cfg: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> pathlib.Path:
  """Where the initial players (and the judges trained on them) are cached."""
  return pathlib.Path(cfg.init_players_dir or pathlib.Path(workdir) / "init_players")


def role_pair_data(world: arith_world.ArithWorld, split: str, n: int) -> arith_world.Batch:
  """For problems 0..n-1 of `split`: [n, 2, T] arrays, [:, 0] helpful, [:, 1] sneaky."""
  split_id = problems.SPLITS.index(split)       # the same three splits in every world
  pairs = []
  for i in tqdm(range(n), desc=f"generating {split} problems", leave=False, mininterval=1):
    rng = np.random.default_rng([world.seed, split_id, i, FLAW_STREAM])
    problem = world.problem(split, i)
    pairs.append(world.solution_batch([problem, problem], [arith_world.ROLE_HELPFUL,
                                                           arith_world.ROLE_SNEAKY], rng))
  return arith_world.Batch(*(np.stack([getattr(p, f.name) for p in pairs])
                             for f in dataclasses.fields(arith_world.Batch)))


@dataclasses.dataclass(frozen=True)
class LengthBuckets:
  """Problems grouped by derived-step count, so a batch drops the padding columns that all
  its rows share. Bucket b keeps the column window [lo, hi) of the shared layout: left of lo
  every prompt is padding, from hi on every solution is. One compiled shape per bucket."""

  members: tuple[np.ndarray, ...]
  windows: tuple[tuple[int, int], ...]

  @classmethod
  def build(cls, data: arith_world.Batch, prompt_len: int, quantum: int = 1
            ) -> LengthBuckets:
    """Buckets by the helpful solution's length (arith: 8 * steps + 3) in units of
    `quantum` tokens (GSM8K's lengths vary token by token: 32)."""
    prompt = data.kv_mask[:, :, :prompt_len].sum(axis=2).max(axis=1)     # [n] over roles
    solution = data.loss_mask.sum(axis=2).max(axis=1)
    key = -(-data.loss_mask[:, 0].sum(axis=1) // quantum)
    members, windows = [], []
    for k in np.unique(key):
      sel = np.flatnonzero(key == k)
      members.append(sel)
      windows.append((prompt_len - int(prompt[sel].max()),
                      prompt_len + int(solution[sel].max())))
    return cls(tuple(members), tuple(windows))

  def draw(self, rng: np.random.Generator, batch_size: int):
    """Indices of one batch (all from one bucket, chosen by size) and its column window."""
    sizes = np.array([len(m) for m in self.members], float)
    b = rng.choice(len(sizes), p=sizes / sizes.sum())
    return rng.choice(self.members[b], size=batch_size), self.windows[b]


@dataclasses.dataclass(frozen=True)
class Resume:
  """Where a supervised loop keeps its partial state: every `every` steps and on SIGTERM
  it saves the whole train state to `path` (a pvg_jax.checkpoint under `key`), and a later
  start continues from there. Batches are a function of the step, so the result equals an
  uninterrupted run's."""

  path: pathlib.Path
  key: str
  every: int


def fit(name: str, spec: ModelSpec, params, opt_cfg, make_step, make_batch, mesh: Mesh,
        writer: MetricWriter, log_every: int, resume: Resume | None = None):
  """Generic supervised loop: jitted step (one compile per length bucket), batches from
  make_batch(step), metrics at log steps only (no per-step host sync), resumable."""
  tx = train_state.make_optimizer(opt_cfg)
  rules = sharding.DEFAULT_RULES
  shardings = train_state.spec_state_shardings(spec, tx, mesh, rules)
  state = train_state.create_state(tx, params, shardings)
  start = 0
  if resume is not None and (resume.path / "meta.json").exists():
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                           sharding=x.sharding), state)
    try:
      state, extra = checkpoint.restore(resume.path, abstract, resume.key)
      start = int(extra["step"])
      logging.info("%s resumed at step %d from %s", name, start, resume.path)
    except checkpoint.CheckpointError as e:
      logging.warning("%s: partial checkpoint rejected, starting over: %s", name, e)
  step_fn = steps.jit_step(make_step(spec, tx), shardings, make_batch(0), mesh, rules)
  last = {}
  with tqdm(range(start, opt_cfg.steps), desc=name, initial=start, total=opt_cfg.steps,
            mininterval=1) as bar:
    for step in bar:
      state, metrics = step_fn(state, make_batch(step))
      stop = preemption.requested()
      if (step + 1) % log_every == 0 or step + 1 == opt_cfg.steps or stop:
        last = writer.write(name, step + 1, metrics)
        bar.set_postfix(loss=f"{last['loss']:.3f}")
      if resume is not None and step + 1 < opt_cfg.steps and (
          stop or (step + 1) % resume.every == 0):
        checkpoint.save(resume.path, state, resume.key, {"step": step + 1})
      if stop:
        raise cli.Preempted(f"SIGTERM: checkpointed {name} at step {step + 1}; run the "
                            "same command to resume.")
  return state["params"], last


def train_prover(cfg, world, spec: ModelSpec, mesh: Mesh, writer: MetricWriter,
                 resume: Resume | None = None):
  """Role-conditioned SFT of the prover; returns its params."""
  data = role_pair_data(world, "prover", cfg.sft.num_problems)
  buckets = LengthBuckets.build(data, world.layout.prompt_len,
                                getattr(world, "length_quantum", 1))
  roles = np.arange(cfg.sft.batch_size) % 2

  def batch(step):
    rng = np.random.default_rng([cfg.seed, SFT_STREAM, step])
    idx, (lo, hi) = buckets.draw(rng, cfg.sft.batch_size)
    return {"tokens": data.tokens[idx, roles, lo:hi], "kv_mask": data.kv_mask[idx, roles, lo:hi],
            "loss_mask": data.loss_mask[idx, roles, :hi - world.layout.prompt_len]}

  params = initial_params(cfg, "prover", spec, mesh,
                          jax.random.fold_in(jax.random.key(cfg.seed), SFT_STREAM))
  return fit("prover_sft", spec, params, cfg.sft, steps.make_sft_step, batch, mesh, writer,
              cfg.log_every, resume)[0]


def train_verifier(cfg, world, spec: ModelSpec, mesh: Mesh, writer: MetricWriter,
                   resume: Resume | None = None):
  """Verifier pretraining on (correct, flawed) generator pairs; returns its params."""
  vcfg = cfg.verifier_pretrain
  data = role_pair_data(world, "verifier", vcfg.num_problems)
  buckets = LengthBuckets.build(data, world.layout.prompt_len,
                                getattr(world, "length_quantum", 1))
  correct = np.tile([[True, False]], (vcfg.batch_size, 1))
  seq = world.layout.seq_len

  def batch(step):
    rng = np.random.default_rng([cfg.seed, VERIFIER_STREAM, step])
    idx, (lo, hi) = buckets.draw(rng, vcfg.batch_size)
    tokens = world.verifier_view(data.tokens[idx].reshape(-1, seq))[:, lo:hi]
    return {"tokens": tokens, "kv_mask": data.kv_mask[idx].reshape(-1, seq)[:, lo:hi],
            "correct": correct, "valid": np.ones_like(correct)}

  def make_step(spec, tx):
    return steps.make_verifier_step(spec, tx, vcfg.loss, vcfg.lam)

  params = initial_params(cfg, "verifier", spec, mesh,
                          jax.random.fold_in(jax.random.key(cfg.seed), VERIFIER_STREAM))
  return fit("verifier_pretrain", spec, params, vcfg, make_step, batch, mesh, writer,
              cfg.log_every, resume)[0]


def evaluate(cfg, world, players: Players, mesh: Mesh) -> dict:
  """Held-out test problems: helpful/sneaky accuracy of prover samples and the verifier's
  pairwise accuracy / AUC on them (correct vs incorrect, both roles pooled)."""
  ecfg = cfg.eval
  index, roles = rollout.both_roles(ecfg.num_problems, ecfg.samples_per_role)
  sample_fn = sampler.make_sampler(
      players.prover_spec, solution_len=world.layout.solution_len,
      eos_id=world.tokenizer.eos_id, pad_id=world.tokenizer.pad_id,
      temperature=ecfg.temperature)
  score_fn = jax.jit(lambda p, t, m: functional.scores(players.verifier_spec, p, t, m))
  key = jax.random.fold_in(jax.random.key(cfg.seed), EVAL_STREAM)
  with tqdm(total=-(-len(index) // ecfg.batch_size), desc="evaluating", leave=False) as bar:
    ro = rollout.sample_rollouts(world, sample_fn, players.prover_params, "test", index, roles,
                                 key, ecfg.batch_size, bar)
  scores = rollout.score_sequences(world, score_fn, players.verifier_params, ro.tokens,
                                   ecfg.batch_size)
  helpful = ro.role == arith_world.ROLE_HELPFUL
  pair_acc, n_pairs, n_problems = rollout.pairwise_accuracy(ro.problem_index, ro.correct,
                                                            scores)
  hc, si = helpful & ro.correct, ~helpful & ~ro.correct
  return {
      "helpful_accuracy": float(ro.correct[helpful].mean()),
      "sneaky_accuracy": float(ro.correct[~helpful].mean()),
      "helpful_all_steps_valid": float((ro.first_error[helpful] == -1).mean()),
      "sneaky_format_errors": float(np.mean([e == "format" for e, h in
                                             zip(ro.error_type, helpful) if not h])),
      "verifier_pairwise_accuracy": pair_acc,
      "verifier_pairs": n_pairs,
      "verifier_problems_with_pairs": n_problems,
      "verifier_auc": rollout.roc_auc(ro.correct, scores),
      "helpful_correct_score": float(scores[hc].mean()) if hc.any() else float("nan"),
      "sneaky_incorrect_score": float(scores[si].mean()) if si.any() else float("nan"),
      "eval_samples": int(len(index)),
  }


def initial_players(cfg: ml_collections.ConfigDict, workdir: str | pathlib.Path,
                    mesh: Mesh, writer: MetricWriter) -> Players:
  """The cached initial players, each trained first if no valid cache of it exists."""
  world = worlds.make(cfg)
  prover_spec, verifier_spec = player_specs(cfg, world)
  directory = init_dir(cfg, workdir)
  timing: dict = {}
  trained = {}
  for name, spec, train in (("prover", prover_spec, train_prover),
                            ("verifier", verifier_spec, train_verifier)):
    trained[name] = cached(directory, name, cache_key(cfg, name),
                           sharded_abstract(spec, mesh),
                           lambda r, t=train, s=spec: t(cfg, world, s, mesh, writer, r),
                           timing, cfg.init_checkpoint_every)
  players = Players(prover_spec, trained["prover"], verifier_spec, trained["verifier"], {},
                    timing)
  report_path = directory / f"report_{cache_key(cfg)}.json"
  if report_path.exists() and not any(k.endswith("train_seconds") for k in timing):
    players.report = json.loads(report_path.read_text())
    return players
  t0 = time.time()
  report = evaluate(cfg, world, players, mesh)
  report.update(prover_params=functional.count_params(prover_spec),
                verifier_params=functional.count_params(verifier_spec))
  players.report = report
  timing["eval_seconds"] = time.time() - t0
  if jax.process_index() == 0:
    files.atomic_write_text(report_path, json.dumps(report, indent=1, sort_keys=True))
  return players


def cached(directory: pathlib.Path, name: str, key: str, abstract, train, timing: dict,
            checkpoint_every: int):
  """Params from <directory>/<name>_<key>/ if that cache is valid, else train(resume) and
  save; `resume` keeps the training's partial state in <name>_<key>.partial/."""
  path = directory / f"{name}_{key}"
  if path.exists():
    try:
      params, _ = checkpoint.restore(path, abstract, key)
      logging.info("initial %s restored from %s", name, path)
      timing[f"{name}_restored_from_cache"] = 1.0
      return params
    except checkpoint.CheckpointError as e:
      logging.warning("initial-%s cache rejected, rebuilding: %s", name, e)
  t0 = time.time()
  partial = path.with_name(path.name + ".partial")
  params = train(Resume(partial, f"{key}:partial", checkpoint_every))
  timing[f"{name}_train_seconds"] = time.time() - t0
  checkpoint.save(path, params, key)
  if jax.process_index() == 0:
    shutil.rmtree(partial, ignore_errors=True)
  return params


def sharded_abstract(spec: ModelSpec, mesh: Mesh, rules=sharding.DEFAULT_RULES):
  """Shapes, dtypes and shardings of a model's params (what a checkpoint restores into)."""
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      functional.abstract_params(spec),
                      functional.param_shardings(spec, mesh, rules))
