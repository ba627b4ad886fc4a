"""The debate game (Anthropic 2023; Khan et al. 2024) and its consultancy baselines, played
with the shared round loop (pvg_jax.games.rounds) and PPO (pvg_jax.rl.prover_step).

Every round has two phases:

  play   `game.steps` iterations, each on G train questions:
         - debate: the debater argues both sides (b arguments per side, A_i paired with
           B_i); the debate judge's order-averaged logit d rewards A with d and B with -d
           (judging.py, D.1-D.3); one PPO iteration of the debater (RLOO over each
           (question, side) group, KL to the initial debater); in parallel, one supervised
           step of the debate, flags-only and blind judges on the same transcripts.
         - consultancy: the consultant (its own copy of the initial debater) argues both
           sides too, each argument judged alone by the consultancy judge (reward: that
           judge's logit for the consultant's side); one PPO iteration; supervised steps of
           the consultancy judge on the single arguments and of the double-consultancy
           judge on the (A_i, B_i) pairs.
  eval   held-out questions (unseen names): each protocol's judge accuracy, quote
         behaviour per side; snapshots of the debater, the consultant and their judges
         for the Elo tournament (pvg_jax.debate.evaluate), in
         <workdir>/snapshots/round_<i>/{debater,consultant,judge_debate,judge_consultancy}.

Players train continuously across rounds (rounds are the update's checkpoints, not
restarts); every random draw is a function of (seed, stream, round, step), so a resumed game
reproduces the uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from pvg_jax import preemption, sharding
from pvg_jax.debate import judging
from pvg_jax.debate import players as debate_players
from pvg_jax.games import rounds, snapshots
from pvg_jax.games.state import GameCheckpointer, Preempted, Progress
from pvg_jax.metrics import MetricWriter
from pvg_jax.models import functional, sampler
from pvg_jax.rl import prover_step
from pvg_jax.training import state as train_state
from pvg_jax.worlds.reading.world import ReadingWorld

PLAY_STREAM, EVAL_STREAM = 201, 202
POLICIES = ("debater", "consultant")
SNAPSHOT_JUDGES = ("debate", "consultancy")    # what the Elo tournament judges with
PROTOCOLS = ("debate", "double_consultancy", "ensembled_consultancy", "single_consultancy",
             "flags_only", "blind")


@dataclasses.dataclass
class Functions:
  sample: Callable        # (params, prompts [G*2*b, P], key) -> Samples
  sample_eval: Callable   # (params, prompts [2*E, P], key) -> Samples (one per side)
  update: dict            # policy -> (ppo state, ref params, batch, final [N], beta, key)
  score: Callable         # (judge params, tokens [n, L], kv_mask) -> [n]
  judge_step: Callable    # (judge state, {tokens, kv_mask [2, B, L], a_right [B]}) -> ...
  init_ppo: Callable      # {"policy": params} -> PPO train state
  init_judge: Callable    # params -> judge train state


def build(cfg: ml_collections.ConfigDict, world: ReadingWorld, init, mesh) -> Functions:
  g = cfg.game
  layout, tok = world.layout, world.tokenizer
  ppo_tx = train_state.per_player(
      {"policy": train_state.make_optimizer(g.ppo, g.ppo.epochs * g.ppo.minibatches)})
  judge_tx = train_state.make_optimizer(g.judge)
  turns = 2 if world.rebuttal else 1      # the debater's rows: openings (+ rebuttals)
  update = {policy: jax.jit(prover_step.make_policy_update(
      init.debater_spec, None, ppo_tx, g.ppo, 2 * g.questions * n, g.group_size))
      for policy, n in (("debater", turns), ("consultant", 1))}
  repl = sharding.replicated(mesh)

  def make_sampler(temperature):
    return sampler.make_sampler(init.debater_spec, solution_len=layout.argument_len,
                                eos_id=tok.eos_id, pad_id=tok.pad_id, temperature=temperature,
                                out_shardings=repl)

  def fresh(tx):
    return jax.jit(lambda p: {"params": p, "opt_state": tx.init(p), "step": jnp.int32(0)})

  return Functions(
      make_sampler(g.ppo.temperature), make_sampler(cfg.eval.temperature), update,
      jax.jit(functools.partial(functional.scores, init.judge_spec)),
      jax.jit(debate_players.make_judge_step(init.judge_spec, judge_tx)), fresh(ppo_tx),
      fresh(judge_tx))


def _by_side(args: np.ndarray, questions: int, b: int) -> tuple[np.ndarray, np.ndarray]:
  """Rows grouped (question, side) with b each -> (side A's, side B's) [questions * b, A]."""
  by_side = args.reshape(questions, 2, b, -1)
  return by_side[:, 0].reshape(questions * b, -1), by_side[:, 1].reshape(questions * b, -1)


def _opponents(args: np.ndarray, questions: int, b: int) -> np.ndarray:
  """For each row, the paired opening of the other side (row (q, s, j) -> (q, 1 - s, j))."""
  return args.reshape(questions, 2, b, -1)[:, ::-1].reshape(args.shape)


def _views_batch(world: ReadingWorld, tokens: np.ndarray, a_right: np.ndarray) -> dict:
  return {"tokens": tokens, "kv_mask": tokens != world.tokenizer.pad_id, "a_right": a_right}


class DebateGame:
  phases = ("play", "eval")

  def __init__(self, cfg: ml_collections.ConfigDict, workdir: pathlib.Path, mesh,
               writer: MetricWriter):
    self.cfg, self.workdir, self.mesh, self.writer = cfg, workdir, mesh, writer
    self.world = ReadingWorld(cfg.world, cfg.seed)
    self.init = debate_players.initial_players(cfg, self.world, workdir, mesh, writer)
    self.fns = build(cfg, self.world, self.init, mesh)
    self.ckpt = GameCheckpointer(workdir / "checkpoints")
    self.timing: dict = {"initial_players": self.init.timing}

  # -- state ------------------------------------------------------------------------------

  def fresh(self) -> dict:
    policy = {"policy": self.init.debater_params}
    return {"debater": self.fns.init_ppo(policy), "consultant": self.fns.init_ppo(policy),
            "judges": {n: self.fns.init_judge(p) for n, p in self.init.judges.items()}}

  def abstract(self) -> dict:
    def as_struct(x):
      return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return jax.tree.map(as_struct, self.fresh())     # small players: build and read them

  def key(self, stream: int, *path: int) -> jax.Array:
    key = jax.random.fold_in(jax.random.key(self.cfg.seed), stream)
    for p in path:
      key = jax.random.fold_in(key, p)
    return key

  # -- phases -----------------------------------------------------------------------------

  def run_phase(self, phase: str, round_: int, arrays: dict, progress: Progress,
                save) -> tuple[dict, Progress]:
    if phase == "play":
      return self._play(round_, arrays, progress, save)
    results = {"round": round_, **self.evaluate(round_, arrays)}
    for policy in POLICIES:
      snapshots.save(self.snapshot_path(policy, round_), arrays[policy]["params"]["policy"])
    for judge in SNAPSHOT_JUDGES:
      snapshots.save(self.snapshot_path(f"judge_{judge}", round_),
                     arrays["judges"][judge]["params"])
    _print_round(results)
    return arrays, dataclasses.replace(progress, rounds=[*progress.rounds, results])

  def snapshot_path(self, policy: str, round_: int) -> pathlib.Path:
    return snapshots.round_dir(self.workdir, round_) / policy

  def _play(self, round_: int, arrays: dict, progress: Progress, save):
    g = self.cfg.game
    bar = tqdm(total=g.steps, initial=progress.ppo_step, desc=f"round {round_} play",
               leave=False, mininterval=1)
    for step in range(progress.ppo_step, g.steps):
      arrays, metrics = self.play_step(round_, step, arrays)
      if (step + 1) % self.cfg.log_every == 0 or step + 1 == g.steps:
        values = self.writer.write(f"round_{round_}/play", step + 1, metrics)
        bar.set_postfix(debate=f"{values['debate/judge_accuracy']:.2f}",
                        consult=f"{values['consultancy/judge_accuracy']:.2f}")
      bar.update(1)
      progress = dataclasses.replace(progress, ppo_step=step + 1)
      stop = preemption.requested()
      if stop or ((step + 1) % g.checkpoint_every == 0 and step + 1 < g.steps):
        save(arrays, progress)
        if stop:
          bar.close()
          raise Preempted(round_, "play", step + 1)
    bar.close()
    return arrays, dataclasses.replace(progress, ppo_step=0)

  def play_step(self, round_: int, step: int, arrays: dict):
    """One debate and one consultancy iteration on the same G train questions (KL weight
    game.ppo.beta, fixed: config.validate refuses adaptive_kl here)."""
    g, w, fns = self.cfg.game, self.world, self.fns
    beta = np.float32(g.ppo.beta)
    rng = np.random.default_rng([self.cfg.seed, PLAY_STREAM, round_, step])
    qs = w.questions("train", rng.integers(g.train_questions, size=g.questions))
    b = g.group_size
    row_q = [q for q in qs for _ in range(2 * b)]            # groups (question, side)
    sides = np.tile(np.repeat([0, 1], b), g.questions)
    prompts = w.prompts(row_q, sides)
    pair_q = [q for q in qs for _ in range(b)]
    a_right = np.array([q.answer == 0 for q in qs])
    pair_right, row_right = np.repeat(a_right, b), np.repeat(a_right, 2 * b)
    judges, metrics = dict(arrays["judges"]), {}
    out = dict(arrays)
    for i, policy in enumerate(POLICIES):
      key = self.key(PLAY_STREAM, round_, step, i)
      state = arrays[policy]
      params = state["params"]["policy"]
      args = np.asarray(fns.sample(params, prompts, jax.random.fold_in(key, 0)).tokens)
      arg_a, arg_b = _by_side(args, g.questions, b)
      rows, rebuttals = w.sequences(prompts, args), (None, None)
      if policy == "debater" and w.rebuttal:     # each side answers the paired opening
        opponents = _opponents(args, g.questions, b)
        reb_prompts = w.prompts(row_q, sides, opponents)
        rebs = np.asarray(fns.sample(params, reb_prompts, jax.random.fold_in(key, 2)).tokens)
        rebuttals = _by_side(rebs, g.questions, b)
        reb_rows = w.sequences(reb_prompts, rebs)
        rows = type(rows)(*(np.concatenate([x, y]) for x, y in zip(
            (rows.tokens, rows.kv_mask, rows.loss_mask),
            (reb_rows.tokens, reb_rows.kv_mask, reb_rows.loss_mask))))
      pair_views = w.judge_views("debate", pair_q, arg_a, arg_b, *rebuttals)
      if policy == "debater":
        d = self._judge("debate", judges, pair_views)
        final = np.stack([d.reshape(-1, b), -d.reshape(-1, b)], axis=1).reshape(-1)
        trained = {"debate": pair_views,
                   "flags": w.judge_views("flags", pair_q, arg_a, arg_b, *rebuttals),
                   "blind": w.judge_views("blind", qs)}
        rights = {"debate": pair_right, "flags": pair_right, "blind": a_right}
        judged = pair_right
      else:
        single = w.judge_views("consultancy", row_q,
                               [a if s == 0 else None for a, s in zip(args, sides)],
                               [a if s == 1 else None for a, s in zip(args, sides)])
        d = self._judge("consultancy", judges, single)
        final = np.asarray(judging.side_rewards(d, sides))
        trained = {"consultancy": single, "double": pair_views}
        rights = {"consultancy": row_right, "double": pair_right}
        judged = row_right
      turns = len(rows.tokens) // len(args)       # both turns earn the debate's reward
      batch = {"tokens": rows.tokens, "kv_mask": rows.kv_mask, "loss_mask": rows.loss_mask,
               "helpful": np.tile([True, False], g.questions * turns)}
      out[policy], _, ppo_metrics = fns.update[policy](
          state, self.init.debater_params, batch, np.tile(final, turns).astype(np.float32),
          beta, jax.random.fold_in(key, 1))
      name = "debate" if policy == "debater" else "consultancy"
      metrics.update({f"{name}/{k}": v for k, v in ppo_metrics.items()})
      metrics[f"{name}/judge_accuracy"] = judging.accuracy(d, judged)
      verified = self._verified(row_q, args)          # openings
      right_side = sides == np.where(row_right, 0, 1)
      metrics[f"{name}/verified_right_side"] = float(np.nanmean(verified[right_side]))
      metrics[f"{name}/verified_wrong_side"] = float(np.nanmean(verified[~right_side]))
      for judge, views in trained.items():
        judges[judge], jm = fns.judge_step(judges[judge],
                                           _views_batch(w, views, rights[judge]))
        metrics[f"judge_{judge}/loss"] = jm["loss"]
    out["judges"] = judges
    return out, metrics

  def _judge(self, name: str, judges: dict, views: np.ndarray) -> np.ndarray:
    """(D.1) order-averaged logit of judge `name` (its current params) on views [2, B, L]."""
    two, n, length = views.shape
    s = self.fns.score(judges[name]["params"], views.reshape(two * n, length),
                       views.reshape(two * n, length) != self.world.tokenizer.pad_id)
    return np.asarray(judging.order_averaged(np.asarray(s).reshape(two, n)))

  def _verified(self, qs, args: np.ndarray) -> np.ndarray:
    """Per argument: the share of its quotes that are verified (NaN: no quote)."""
    out = []
    for q, a in zip(qs, args):
      found = self.world.quote_check(q, a)
      out.append(np.mean([x.verified for x in found]) if found else np.nan)
    return np.array(out, float)

  # -- evaluation -------------------------------------------------------------------------

  def evaluate(self, round_: int, arrays: dict) -> dict:
    """Judge accuracy of every protocol on held-out questions (one argument per side and
    policy per question, sampled at eval.temperature) and quote behaviour per side."""
    e, w = self.cfg.eval, self.world
    qs = w.questions("test", np.arange(e.questions))
    row_q = [q for q in qs for _ in range(2)]
    sides = np.tile([0, 1], e.questions)
    prompts = w.prompts(row_q, sides)
    a_right = np.array([q.answer == 0 for q in qs])
    judges = arrays["judges"]
    out, args = {}, {}
    rebuttals = (None, None)
    for i, policy in enumerate(POLICIES):
      key = self.key(EVAL_STREAM, round_ + 1, i)
      params = arrays[policy]["params"]["policy"]
      args[policy] = np.asarray(self.fns.sample_eval(params, prompts, key).tokens)
      if policy == "debater" and w.rebuttal:
        reb_prompts = w.prompts(row_q, sides, _opponents(args[policy], e.questions, 1))
        rebs = np.asarray(self.fns.sample_eval(params, reb_prompts,
                                               jax.random.fold_in(key, 2)).tokens)
        rebuttals = (rebs[0::2], rebs[1::2])
      verified = self._verified(row_q, args[policy])
      right_side = sides == np.repeat(np.where(a_right, 0, 1), 2)
      out[f"{policy}_verified_right_side"] = float(np.nanmean(verified[right_side]))
      out[f"{policy}_verified_wrong_side"] = float(np.nanmean(verified[~right_side]))
      out[f"{policy}_argument_tokens"] = float(
          np.mean([len(w.argument_words(a)) for a in args[policy]]))
    deb_a, deb_b = args["debater"][0::2], args["debater"][1::2]
    con_a, con_b = args["consultant"][0::2], args["consultant"][1::2]
    d = {"debate": self._judge("debate", judges,
                               w.judge_views("debate", qs, deb_a, deb_b, *rebuttals)),
         "flags_only": self._judge("flags", judges,
                                   w.judge_views("flags", qs, deb_a, deb_b, *rebuttals)),
         "blind": self._judge("blind", judges, w.judge_views("blind", qs)),
         "double_consultancy": self._judge("double", judges,
                                           w.judge_views("debate", qs, con_a, con_b))}
    single_a = self._judge("consultancy", judges, w.judge_views("consultancy", qs, con_a))
    single_b = self._judge("consultancy", judges,
                           w.judge_views("consultancy", qs, None, con_b))
    for name, value in d.items():
      out[f"{name}_accuracy"] = judging.accuracy(value, a_right)
    for name, value in judging.consultancy_accuracies(single_a, single_b, a_right).items():
      out[f"{name}_accuracy"] = value
    out["eval_questions"] = int(e.questions)
    return out

  # -- the loop ---------------------------------------------------------------------------

  def run(self) -> dict:
    try:
      t0 = time.time()
      final = rounds.play(self, self.ckpt, self.cfg.game.rounds)
      self.timing["rounds_seconds"] = time.time() - t0
    finally:
      self.ckpt.close()
    initial = self.evaluate(-1, self.fresh())
    return {"game": "debate", "initial_players": initial, "rounds": final.rounds}


def _print_round(r: dict) -> None:
  print(f"round {r['round']}: " + " | ".join(
      f"{p} {r[p + '_accuracy']:.3f}" for p in PROTOCOLS), flush=True)


def print_table(summary: dict, timing: dict) -> None:
  del timing
  rows = [("init", summary["initial_players"])] + [(str(r["round"]), r)
                                                   for r in summary["rounds"]]
  heads = ("debate", "double", "ensembled", "single", "flags", "blind")
  print(f"{'round':>5} " + " ".join(f"{h:>9}" for h in heads)
        + f" {'verified right/wrong (debater)':>31}")
  for name, r in rows:
    print(f"{name:>5} " + " ".join(f"{r[p + '_accuracy']:9.3f}" for p in PROTOCOLS)
          + f" {r['debater_verified_right_side']:15.3f}/{r['debater_verified_wrong_side']:.3f}")


def summary_json(summary: dict) -> str:
  return json.dumps(summary, indent=1, sort_keys=True)
