"""After a debate game: the Elo tournament of its checkpoints and judge accuracy against Elo.

    pvg-eval --workdir runs/debate          (after pvg-train with configs/debate.py)

Players: the initial debater, the debater and the consultant after each round, and best-of-n
variants of the final debater (n arguments sampled per side, the one the final debate judge
rates highest for its side, read alone, is kept: the update's inference-time axis). Each
player writes one argument per side for every held-out question; every pair of players
debates every question twice, sides flipped, before the final round's debate judge
(order-averaged, D.1), and a player wins a debate when the judge's logit favours its side.
Elo ratings are fitted to the wins (judging.elo). Per player, the judge accuracy in debate
(the player arguing both sides) and in single consultancy (the player as the consultant,
before the final consultancy judge), and the least-squares slope of each accuracy on Elo
across players (the papers' claim: positive for debate, flat for consultancy).
Writes <workdir>/evals/tournament.json (cached; deterministic).
"""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np
from tqdm.auto import tqdm

from pvg_jax import cli, files, players, sharding
from pvg_jax.debate import judging
from pvg_jax.debate import players as debate_players
from pvg_jax.games import snapshots
from pvg_jax.metrics import MetricWriter
from pvg_jax.models import functional, sampler
from pvg_jax.worlds.reading.world import ReadingWorld

TOURNAMENT_STREAM = 301
FORMAT = 2   # 2: correct_side_win_rate


def _slope(x: np.ndarray, y: np.ndarray) -> float:
  return float(np.polyfit(x, y, 1)[0]) if len(x) >= 2 and np.ptp(x) > 0 else float("nan")


class Tournament:
  def __init__(self, cfg, workdir: pathlib.Path):
    self.cfg, self.workdir = cfg, workdir
    self.world = w = ReadingWorld(cfg.world, cfg.seed)
    self.mesh = sharding.make_mesh(cfg.mesh.shape)
    self.init = debate_players.initial_players(cfg, w, workdir, self.mesh,
                                               MetricWriter(workdir / "evals"))
    self.final = cfg.game.rounds - 1
    judge_abstract = players.sharded_abstract(self.init.judge_spec, self.mesh)
    self.judges = {name: snapshots.load(snapshots.round_dir(workdir, self.final)
                                        / f"judge_{name}", judge_abstract)
                   for name in ("debate", "consultancy")}
    self.score = jax.jit(lambda p, t, m: functional.scores(
        self.init.judge_spec, p, t, m))
    self.sample = sampler.make_sampler(        # one jit for every player and turn
        self.init.debater_spec, solution_len=w.layout.argument_len, eos_id=w.tokenizer.eos_id,
        pad_id=w.tokenizer.pad_id, temperature=cfg.eval.temperature)

  def judge(self, name: str, views: np.ndarray) -> np.ndarray:
    two, n, length = views.shape
    flat = views.reshape(two * n, length)
    s = self.score(self.judges[name], flat, flat != self.world.tokenizer.pad_id)
    return np.asarray(judging.order_averaged(np.asarray(s).reshape(two, n)))

  def contestants(self) -> list[tuple[str, object, int]]:
    """(name, params, best-of-n) of every player."""
    abstract = players.sharded_abstract(self.init.debater_spec, self.mesh)
    out = [("debater:init", self.init.debater_params, 1)]
    for policy in ("debater", "consultant"):
      for r in range(self.cfg.game.rounds):
        path = snapshots.round_dir(self.workdir, r) / policy
        out.append((f"{policy}:{r}", snapshots.load(path, abstract), 1))
    final = out[self.cfg.game.rounds]       # the final debater
    out += [(f"debater:{self.final}:bo{n}", final[1], n) for n in self.cfg.eval.best_of_n]
    return out

  def arguments(self, index: int, params, n: int, qs) -> np.ndarray:
    """[2, Q, A]: the player's argument for side A and for side B of every question."""
    w = self.world
    q_rows = [q for q in qs for _ in range(n)]
    out = []
    for side in (0, 1):
      key = jax.random.fold_in(jax.random.key(self.cfg.seed), TOURNAMENT_STREAM)
      key = jax.random.fold_in(jax.random.fold_in(key, index), side)
      args = np.asarray(self.sample(params, w.prompts(q_rows, [side] * len(q_rows)), key).tokens)
      if n > 1:             # best of n: the debate judge's logit for this side, read alone
        alone = [a if side == 0 else None for a in args], [a if side == 1 else None
                                                           for a in args]
        d = self.judge("debate", w.judge_views("debate", q_rows, *alone))
        d = judging.side_rewards(d, np.full(len(d), side)).reshape(len(qs), n)
        args = args.reshape(len(qs), n, -1)[np.arange(len(qs)), np.argmax(d, axis=1)]
      out.append(args)
    return np.stack(out)

  def rebuttals(self, index: int, params, side: int, opponents: np.ndarray, qs, salt: int
                ) -> np.ndarray | None:
    """[Q, A] the player's rebuttals for `side` against `opponents`' openings (None without
    world.rebuttal)."""
    w = self.world
    if not w.rebuttal:
      return None
    key = jax.random.fold_in(jax.random.key(self.cfg.seed), TOURNAMENT_STREAM + 1)
    for x in (index, side, salt):
      key = jax.random.fold_in(key, x)
    return np.asarray(self.sample(params, w.prompts(qs, [side] * len(qs), opponents), key).tokens)

  def debate(self, i: int, j: int, contestants, args, qs) -> np.ndarray:
    """The debate judge's d on every question, player i arguing A and j arguing B (each
    rebutting the other's opening with world.rebuttal)."""
    k = len(contestants)
    reb_a = self.rebuttals(i, contestants[i][1], 0, args[j][1], qs, j)
    reb_b = self.rebuttals(j, contestants[j][1], 1, args[i][0], qs, k + i)
    return self.judge("debate", self.world.judge_views("debate", qs, args[i][0], args[j][1],
                                                       reb_a, reb_b))

  def run(self) -> dict:
    w = self.world
    qs = w.questions("test", np.arange(self.cfg.eval.tournament_questions))
    a_right = np.array([q.answer == 0 for q in qs])
    contestants = self.contestants()
    args = [self.arguments(i, p, n, qs)
            for i, (_, p, n) in enumerate(tqdm(contestants, desc="arguments", leave=False))]
    k = len(contestants)
    wins, games = np.zeros((k, k)), np.zeros((k, k))
    correct_side = []                                 # did the right option's side win?
    for i in tqdm(range(k), desc="tournament", leave=False):
      for j in range(k):
        if i == j:
          continue
        d = self.debate(i, j, contestants, args, qs)
        won = np.where(d == 0, 0.5, d > 0)            # i argued A, j argued B
        correct_side.append(np.where(d == 0, 0.5, (d > 0) == a_right))
        wins[i, j] += won.sum()
        wins[j, i] += (1 - won).sum()
        games[i, j] += len(qs)
        games[j, i] += len(qs)
    ratings = judging.elo(wins, games)
    rows = []
    for i, ((name, _, n), a, r) in enumerate(zip(contestants, args, ratings)):
      debate = judging.accuracy(self.debate(i, i, contestants, args, qs), a_right)
      single = judging.consultancy_accuracies(
          self.judge("consultancy", w.judge_views("consultancy", qs, a[0])),
          self.judge("consultancy", w.judge_views("consultancy", qs, None, a[1])), a_right)
      rows.append({"player": name, "best_of": n, "elo": float(r),
                   "debate_accuracy": debate,
                   "consultancy_accuracy": single["single_consultancy"]})
    elo = np.array([r["elo"] for r in rows])
    return {"format": FORMAT, "questions": len(qs), "players": rows,
            "correct_side_win_rate": float(np.mean(correct_side)),
            "wins": wins.tolist(), "games": games.tolist(),
            "slope_debate_per_100_elo": 100 * _slope(elo, np.array(
                [r["debate_accuracy"] for r in rows])),
            "slope_consultancy_per_100_elo": 100 * _slope(elo, np.array(
                [r["consultancy_accuracy"] for r in rows]))}


def evaluate(cfg, workdir: str | pathlib.Path) -> dict:
  """tournament.json of a finished debate game (computed once, then read)."""
  workdir = pathlib.Path(workdir)
  if not (workdir / "summary.json").exists():
    raise cli.UserError(f"{workdir}: no summary.json; finish the game first (pvg-train)")
  path = workdir / "evals" / "tournament.json"
  if path.exists():
    try:
      cached = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):   # a damaged cache is recomputed
      cached = {}
    if cached.get("format") == FORMAT:
      return cached
  result = Tournament(cfg, workdir).run()
  if jax.process_index() == 0:
    files.atomic_write_text(path, json.dumps(result, indent=1, sort_keys=True))
  return result


def print_tournament(result: dict) -> None:
  for row in result["players"]:
    print(f"{row['player']:>18} elo {row['elo']:+7.1f} debate {row['debate_accuracy']:.3f} "
          f"consultancy {row['consultancy_accuracy']:.3f}")
  print(f"the right option's side won {result['correct_side_win_rate']:.3f} of the "
        "tournament's debates")
  print(f"slope per 100 Elo: debate {result['slope_debate_per_100_elo']:+.3f}, consultancy "
        f"{result['slope_consultancy_per_100_elo']:+.3f}")
