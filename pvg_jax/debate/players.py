"""The debate game's initial players (round -1), cached like the checkability game's.

- Debater: one network for both sides (self-play) and the consultant's starting point,
  trained by SFT on template arguments (`ReadingWorld.template_argument`): quotes of the
  supporting facts when its side's option is right, a misleading or invented quote when it
  is wrong. The prompt says which option to argue, never whether it is right: the debater
  has to read the passage to know which template applies.
- Judges, one per view (debate, consultancy, blind, flags; the double-consultancy judge
  starts from the debate judge), pretrained by the order-averaged loss (judging.py, D.2) on
  template transcripts of train-split questions.
Each is cached in <init dir>/<name>_<key>/ (players.cached), key = hash of what determines it.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from pvg_jax import players, sharding
from pvg_jax.debate import judging
from pvg_jax.metrics import MetricWriter
from pvg_jax.models import functional
from pvg_jax.models.transformer import ModelSpec
from pvg_jax.training import steps
from pvg_jax.worlds.reading.world import VIEWS, ReadingWorld

SFT_STREAM, JUDGE_STREAM = 101, 102
JUDGES = ("debate", "double", "consultancy", "blind", "flags")   # judge name -> its view
VIEW_OF = {"debate": "debate", "double": "debate", "consultancy": "consultancy",
           "blind": "blind", "flags": "flags"}


@dataclasses.dataclass
class DebatePlayers:
  debater_spec: ModelSpec
  debater_params: dict
  judge_spec: ModelSpec
  judges: dict                       # judge name -> params
  timing: dict = dataclasses.field(default_factory=dict)


def specs(cfg: ml_collections.ConfigDict, world: ReadingWorld) -> tuple[ModelSpec, ModelSpec]:
  dtype = cfg.get("compute_dtype", "float32")
  return (functional.make_spec(cfg.debater.size, world.tokenizer.size, ("lm",), dtype),
          functional.make_spec(cfg.judge.size, world.tokenizer.size, ("score",), dtype))


def judge_loss(spec: ModelSpec, params, batch):
  """(D.2) on batch tokens / kv_mask [2, B, L] (given and swapped order), a_right [B]."""
  two, b, length = batch["tokens"].shape
  s = functional.scores(spec, params, batch["tokens"].reshape(two * b, length),
                        batch["kv_mask"].reshape(two * b, length)).reshape(two, b)
  loss = judging.judge_loss(s, batch["a_right"])
  d = judging.order_averaged(s)
  return loss, {"loss": loss, "accuracy": ((d > 0) == batch["a_right"]).mean()}


def make_judge_step(spec: ModelSpec, tx):
  return steps.make_step(lambda p, b: judge_loss(spec, p, b), tx)


def template_views(world: ReadingWorld, view: str, split: str, index, rng: np.random.Generator
                   ) -> dict:
  """A judge batch of template transcripts: [2, B, L] views of questions `index` and
  a_right [B]. Consultancy: one argument, its side drawn 50/50 per question. With
  world.rebuttal, debate and flags views also hold a template rebuttal of each side."""
  qs = world.questions(split, index)

  def arguments():
    out = world.template_batch(qs + qs, [0] * len(qs) + [1] * len(qs), rng).tokens[
        :, world.layout.prompt_len:]
    return out[:len(qs)], out[len(qs):]
  a, b = arguments()
  rebuttals = (None, None)
  if view == "consultancy":
    side = rng.integers(2, size=len(qs))
    a = [x if s == 0 else None for x, s in zip(a, side)]
    b = [y if s == 1 else None for y, s in zip(b, side)]
  elif world.rebuttal and view != "blind":
    rebuttals = arguments()
  tokens = world.judge_views(view, qs, a, b, *rebuttals)
  return {"tokens": tokens, "kv_mask": tokens != world.tokenizer.pad_id,
          "a_right": np.array([q.answer == 0 for q in qs])}


def train_debater(cfg, world: ReadingWorld, spec: ModelSpec, mesh: Mesh, writer: MetricWriter,
                  resume: players.Resume | None = None):
  s = cfg.sft

  def batch(step):
    rng = np.random.default_rng([cfg.seed, SFT_STREAM, step])
    qs = world.questions("train", rng.integers(s.num_questions, size=s.batch_size))
    turns = rng.integers(2, size=s.batch_size) if world.rebuttal else None
    data = world.template_batch(qs, rng.integers(2, size=s.batch_size), rng, turns)
    return {"tokens": data.tokens, "kv_mask": data.kv_mask, "loss_mask": data.loss_mask}

  params = functional.init_params(spec, jax.random.fold_in(jax.random.key(cfg.seed),
                                                           SFT_STREAM), mesh,
                                  sharding.DEFAULT_RULES)
  return players.fit("debater_sft", spec, params, s, steps.make_sft_step, batch, mesh, writer,
                     cfg.log_every, resume)[0]


def train_judge(cfg, world: ReadingWorld, view: str, spec: ModelSpec, mesh: Mesh,
                writer: MetricWriter, resume: players.Resume | None = None):
  j = cfg.judge_pretrain
  stream = JUDGE_STREAM * 10 + VIEWS.index(view)

  def batch(step):
    rng = np.random.default_rng([cfg.seed, stream, step])
    return template_views(world, view, "train", rng.integers(j.num_questions,
                                                             size=j.batch_size), rng)

  params = functional.init_params(spec, jax.random.fold_in(jax.random.key(cfg.seed), stream),
                                  mesh, sharding.DEFAULT_RULES)
  return players.fit(f"judge_pretrain_{view}", spec, params, j, make_judge_step, batch, mesh,
                     writer, cfg.log_every, resume)[0]


def initial_players(cfg: ml_collections.ConfigDict, world: ReadingWorld,
                    workdir: pathlib.Path, mesh: Mesh, writer: MetricWriter) -> DebatePlayers:
  """The cached initial debater and judges, each trained first if no valid cache exists."""
  debater_spec, judge_spec = specs(cfg, world)
  directory = players.init_dir(cfg, workdir)
  timing: dict = {}
  base = ("seed", "world", "compute_dtype")
  debater = players.cached(
      directory, "debater", players.cache_key(cfg, parts=(*base, "debater", "sft")),
      players.sharded_abstract(debater_spec, mesh),
      lambda r: train_debater(cfg, world, debater_spec, mesh, writer, r), timing,
      cfg.init_checkpoint_every)
  by_view = {}
  for view in VIEWS:
    by_view[view] = players.cached(
        directory, f"judge_{view}", players.cache_key(cfg, parts=(*base, "judge",
                                                                   "judge_pretrain")) + view,
        players.sharded_abstract(judge_spec, mesh),
        lambda r, v=view: train_judge(cfg, world, v, judge_spec, mesh, writer, r), timing,
        cfg.init_checkpoint_every)
  judges = {name: by_view[VIEW_OF[name]] for name in JUDGES}
  return DebatePlayers(debater_spec, debater, judge_spec, judges, timing)
