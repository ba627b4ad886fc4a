"""A judging campaign: which solutions each human judge sees, fixed in one versionable file.

K's human study (METHOD 1.3 item 3): held-out problems; for each prover checkpoint up to one
correct and one incorrect solution per problem (problems whose samples are all correct or all
incorrect dropped); every judge gets a balanced mix of correct and incorrect solutions from
every checkpoint, judged under a strict time limit with no feedback.

`build(workdir, ...)` reads a game's workdir (finished or still running):

    init/helpful, init/sneaky     the initial prover on the game's held-out protocol
                                  (sampled as pvg-eval does, cached in <workdir>/evals/)
    round_<r>/helpful|sneaky      each finished round's prover, from its end-of-round
                                  samples (<workdir>/rollouts/round_<r>/eval_test.npz)
    baseline/helpful              the correctness-only baseline's final prover, when given
                                  (or found beside the game, as pvg-experiments lays it out)

and assigns items to judges deterministically from `seed`:

- strata are (checkpoint, label); a judge's `per_judge` slots cycle through the strata from
  an offset that moves with the judge, so every judge's correct and incorrect counts of
  each checkpoint differ by at most one and all strata are covered evenly across judges;
- a stratum's judge slots are dealt into groups of `k` distinct judges and each group gets
  one item whose problem none of them has seen: every item is judged by `k` judges (at
  most k - 1 items of a stratum by one fewer when k does not divide its slots) and no judge
  sees a problem twice;
- item ids are a random permutation, so an id tells nothing about checkpoint or label.

The campaign file holds the labels (the server reads them; they never reach a browser) and
no secrets: judge tokens live in the campaign's database (store.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import pathlib

import numpy as np

from pvg_jax import cli, files

FORMAT = "pvg-judge-campaign/1"
ROLES = ("helpful", "sneaky")
CAMPAIGN_FILE = "campaign.json"
JUDGING_STREAM = 55   # sampling stream of campaign solutions (evals/run.py uses 51-54)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
  id: str          # "init/helpful", "round_0/sneaky", "baseline/helpful"
  round: int       # -1 for the initial prover
  role: str
  source: str      # "game" or "baseline"
  label: str       # what a plot calls it


@dataclasses.dataclass(frozen=True)
class Item:
  id: str
  checkpoint: str
  problem_index: int
  problem: str           # display text
  solution: list[str]    # display lines
  correct: bool          # the label: server-side only
  simulated: dict        # simulated judge -> accept: "checker" (budgeted) and the panel
  checker_time: int      # tokens the budgeted checker read


@dataclasses.dataclass(frozen=True)
class Campaign:
  name: str
  seed: int
  limit_s: float
  grace_s: float
  per_judge: int
  k: int
  source: dict
  checkpoints: list[Checkpoint]
  items: dict[str, Item]
  assignments: dict[str, list[str]]    # judge id -> item ids, in presentation order

  @property
  def judges(self) -> list[str]:
    return list(self.assignments)

  def checkpoint_of(self, item_id: str) -> Checkpoint:
    return self._by_id[self.items[item_id].checkpoint]

  @property
  def _by_id(self) -> dict[str, Checkpoint]:
    return {c.id: c for c in self.checkpoints}

  def digest(self) -> str:
    return hashlib.sha256(json.dumps(to_json(self), sort_keys=True).encode()).hexdigest()[:16]


# -- pools: balanced correct/incorrect solutions per checkpoint ------------------------------

@dataclasses.dataclass(frozen=True)
class Pool:
  checkpoint: Checkpoint
  problem_index: np.ndarray
  tokens: np.ndarray
  correct: np.ndarray


def _balanced(pool: Pool, rng: np.random.Generator) -> Pool:
  from pvg_jax.evals import measures
  rows = measures.balanced_pick(pool.problem_index, pool.correct, rng).rows
  return Pool(pool.checkpoint, pool.problem_index[rows], pool.tokens[rows], pool.correct[rows])


def baseline_beside(workdir: pathlib.Path) -> pathlib.Path | None:
  """pvg-experiments puts the baseline at seed_<s>/correctness beside seed_<s>/<reward>."""
  other = workdir.parent / "correctness"
  return other if other != workdir and (other / "summary.json").is_file() else None


def _final_provers(workdir: pathlib.Path) -> list[tuple[int, int]]:
  """(round, step) of the last prover snapshot of every finished round (a round is finished
  once its end-of-round evaluation is written)."""
  from pvg_jax.games import snapshots
  out = []
  while (workdir / "rollouts" / f"round_{len(out)}" / "eval_test.npz").exists():
    steps = snapshots.prover_steps(workdir, len(out))
    if not steps:
      break
    out.append((len(out), steps[-1]))
  return out


def pools(workdir: pathlib.Path, baseline: pathlib.Path | None, problems: int,
          samples: int, roles: tuple[str, ...]) -> tuple[list[Pool], object]:
  """`samples` solutions per held-out problem (the first `problems` test problems) of every
  checkpoint and role, sampled as pvg-eval samples; and the game's evaluation context."""
  from pvg_jax.evals import run as evals_run
  ev = evals_run.Evaluation(workdir, require_finished=False)
  out = []
  index = np.repeat(np.arange(problems), samples)

  def add(e, round_: int, step: int, source: str, roles: tuple[str, ...]):
    params = e.prover(round_, step)
    for role in roles:
      r = ROLES.index(role)
      ro = e.sample(params, "test", index, np.full(len(index), r),
                    e.key(JUDGING_STREAM, round_, step, r))
      who = "initial prover" if round_ < 0 else (
          "correctness-only baseline" if source == "baseline" else f"round {round_}")
      cid = ("init" if round_ < 0 else "baseline" if source == "baseline"
             else f"round_{round_}") + f"/{role}"
      out.append(Pool(Checkpoint(cid, round_, role, source, f"{who} ({role})"),
                      ro.problem_index, ro.tokens, ro.correct))

  add(ev, evals_run.INIT, 0, "game", roles)
  for r, step in _final_provers(workdir):
    add(ev, r, step, "game", roles)
  if baseline is not None and "helpful" in roles:
    base = evals_run.Evaluation(baseline, require_finished=False)
    if base.cfg.world.to_dict() != ev.cfg.world.to_dict() or base.cfg.seed != ev.cfg.seed:
      raise cli.UserError(f"{baseline} was played in another world (world or seed differ "
                          f"from {workdir}); pass the baseline of the same seed")
    done = _final_provers(baseline)
    if not done:
      raise cli.UserError(f"{baseline}: the baseline has no finished round yet")
    add(base, *done[-1], "baseline", ("helpful",))
  return out, ev


# -- assignment ------------------------------------------------------------------------------

def strata_counts(n_strata: int, per_judge: int, judge: int) -> list[int]:
  """How many of judge `judge`'s slots fall in each stratum: `per_judge` slots cycling
  through the strata from offset judge * per_judge."""
  counts = [0] * n_strata
  for s in range(per_judge):
    counts[(judge * per_judge + s) % n_strata] += 1
  return counts


def max_judges(strata: list[list[tuple[str, int]]], per_judge: int, k: int, seed: int,
               cap: int = 100) -> int:
  """The most judges (<= cap) that `assign` can serve from these strata."""
  for n in range(cap, 0, -1):
    try:
      assign(strata, n, per_judge, k, np.random.default_rng(seed))
      return n
    except cli.UserError:
      continue
  return 0


def assign(strata: list[list[tuple[str, int]]], judges: int, per_judge: int, k: int,
           rng: np.random.Generator) -> list[list[str]]:
  """Items for each judge (see the module docstring). `strata[s]` lists (item id, problem)
  of stratum s. A stratum's judge slots are dealt into groups of k distinct judges (fewer
  for at most k - 1 groups when k does not divide them); each group gets one item, drawn at
  random among those whose problem none of the group has seen. Raises UserError when a
  stratum has too few suitable items."""
  seen: list[set[int]] = [set() for _ in range(judges)]
  mine: list[list[str]] = [[] for _ in range(judges)]
  counts = [strata_counts(len(strata), per_judge, j) for j in range(judges)]
  for s, members in enumerate(strata):
    slots = [j for j in range(judges) for _ in range(counts[j][s])]
    if not slots:
      continue
    n_groups = math.ceil(len(slots) / k)
    if n_groups > len(members):
      raise cli.UserError(f"stratum {s} has {len(members)} solutions but {judges} judges x "
                          f"{per_judge} items with k={k} need {n_groups}: lower --judges or "
                          "--per_judge, or raise --k")
    free = [members[i] for i in rng.permutation(len(members))]
    for g in range(n_groups):
      group = slots[g::n_groups]          # a judge's repeated slots land in other groups
      taken = set().union(*(seen[j] for j in group))
      pick = next((m for m in free if m[1] not in taken), None)
      if pick is None:
        raise cli.UserError(f"stratum {s}: no solution left whose problem judges "
                            f"{', '.join(str(j + 1) for j in group)} have not seen: lower "
                            "--judges or --per_judge, or raise --k")
      free.remove(pick)
      for j in group:
        seen[j].add(pick[1])
        mine[j].append(pick[0])
  return [[m[i] for i in rng.permutation(len(m))] for m in mine]


# -- building, saving, loading ---------------------------------------------------------------

def build(workdir: str | pathlib.Path, name: str, *, baseline: str | pathlib.Path | None = None,
          judges: int = 0, per_judge: int = 0, k: int = 3, limit_s: float = 45.0,
          grace_s: float = 2.0, seed: int = 0, roles: tuple[str, ...] = ROLES,
          problems: int = 0, samples: int = 0, simulated_panel: bool = True) -> Campaign:
  """The campaign of `workdir` (see the module docstring). per_judge 0: one correct and one
  incorrect solution of every checkpoint; judges 0: as many as the pools allow (<= 100);
  problems / samples 0: the `evals` block's test_problems / samples_per_problem;
  simulated_panel: also record the model-judge panel's verdicts (trained first if the
  game's evaluation has not cached it)."""
  workdir = pathlib.Path(workdir)
  if not (workdir / "config.json").exists():
    raise cli.UserError(f"{workdir}: not a game workdir (no config.json)")
  if limit_s <= 0 or grace_s < 0 or k < 1 or judges < 0 or per_judge < 0:
    raise cli.UserError("need limit_s > 0, grace_s >= 0, k >= 1, judges >= 0, per_judge >= 0")
  from pvg_jax.evals import judges as judges_lib
  base = pathlib.Path(baseline) if baseline else baseline_beside(workdir)
  rng = np.random.default_rng([seed, 7041])
  unknown = set(roles) - set(ROLES)
  if unknown or not roles:
    raise cli.UserError(f"roles must be some of {ROLES}, got {sorted(unknown) or 'none'}")
  evals_cfg = json.loads((workdir / "config.json").read_text()).get("evals", {})
  problems = problems or int(evals_cfg.get("test_problems", 256))
  samples = samples or int(evals_cfg.get("samples_per_problem", 8))
  raw, ev = pools(workdir, base, problems, samples, tuple(roles))
  balanced = []
  for pool in raw:
    b = _balanced(pool, rng)
    if len(b.correct):
      balanced.append(b)
    else:
      logging.warning("%s: no held-out problem has both a correct and an incorrect "
                      "solution; left out of the campaign", pool.checkpoint.label)
  if not balanced:
    raise cli.UserError(f"{workdir}: no checkpoint has a problem with both a correct and an "
                        "incorrect solution to judge")
  checker = judges_lib.make_checker(ev.cfg.evals, ev.world)
  panel = ev.panel() if simulated_panel else []
  items, strata, prompt = [], [], ev.world.layout.prompt_len
  for pool in balanced:
    panel_accepts = {j.name: j.scores(ev.world, pool.tokens) > j.threshold for j in panel}
    for label in (True, False):
      members = []
      for row in np.flatnonzero(pool.correct == label):
        problem = ev.world.problem("test", int(pool.problem_index[row]))
        text, lines = ev.world.display(problem, pool.tokens[row, prompt:])
        verdict = checker.judge(problem, ev.world.tokenizer.solution_words(
            pool.tokens[row, prompt:]))
        simulated = {"checker": bool(verdict.accept),
                     **{name: bool(a[row]) for name, a in panel_accepts.items()}}
        items.append(Item("", pool.checkpoint.id, int(pool.problem_index[row]), text, lines,
                          bool(label), simulated, int(verdict.time)))
        members.append((len(items) - 1, int(pool.problem_index[row])))
      strata.append(members)
  ids = [f"item-{i:04d}" for i in rng.permutation(len(items))]
  items = [dataclasses.replace(it, id=ids[n]) for n, it in enumerate(items)]
  strata = [[(ids[n], p) for n, p in members] for members in strata]
  per_judge = per_judge or len(strata)
  if not judges:
    judges = max_judges(strata, per_judge, k, seed)
    if not judges:
      raise cli.UserError(f"the pools are too small for {per_judge} items per judge with "
                          f"k={k}: lower --per_judge or raise --k")
  order = assign(strata, judges, per_judge, k, np.random.default_rng(seed))
  width = len(str(judges))
  used = {i for o in order for i in o}
  return Campaign(
      name=name, seed=seed, limit_s=float(limit_s), grace_s=float(grace_s),
      per_judge=per_judge, k=k,
      source={"workdir": str(workdir.resolve()),
              "baseline": str(base.resolve()) if base else None,
              "problems": problems, "samples_per_problem": samples},
      checkpoints=[p.checkpoint for p in balanced],
      items={it.id: it for it in sorted(items, key=lambda it: it.id) if it.id in used},
      assignments={f"j{j + 1:0{width}d}": o for j, o in enumerate(order)})


def to_json(c: Campaign) -> dict:
  return {"format": FORMAT, "name": c.name, "seed": c.seed, "limit_s": c.limit_s,
          "grace_s": c.grace_s, "per_judge": c.per_judge, "k": c.k, "source": c.source,
          "checkpoints": [dataclasses.asdict(x) for x in c.checkpoints],
          "items": [dataclasses.asdict(x) for x in c.items.values()],
          "assignments": c.assignments}


def save(c: Campaign, directory: str | pathlib.Path) -> pathlib.Path:
  path = pathlib.Path(directory) / CAMPAIGN_FILE
  if path.exists():
    raise cli.UserError(f"{path} exists: a campaign is not overwritten (judgments may refer "
                        "to it); choose another --campaign name")
  files.atomic_write_text(path, json.dumps(to_json(c), indent=1) + "\n")
  return path


def load(directory: str | pathlib.Path) -> Campaign:
  """The campaign in `directory` (or the campaign.json given); one-line errors naming what
  is wrong and where."""
  path = pathlib.Path(directory)
  path = path / CAMPAIGN_FILE if path.is_dir() else path
  if not path.exists():
    raise cli.UserError(f"{path}: no campaign here (make one with pvg-judge create)")
  try:
    d = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise cli.UserError(f"{path}: not a campaign file ({e})") from None
  if not isinstance(d, dict) or d.get("format") != FORMAT:
    raise cli.UserError(f"{path}: not a {FORMAT} file")
  try:
    checkpoints = [Checkpoint(**x) for x in d["checkpoints"]]
    items = {x["id"]: Item(**x) for x in d["items"]}
    c = Campaign(d["name"], int(d["seed"]), float(d["limit_s"]), float(d["grace_s"]),
                 int(d["per_judge"]), int(d["k"]), d["source"], checkpoints, items,
                 {str(j): list(v) for j, v in d["assignments"].items()})
  except (KeyError, TypeError, ValueError) as e:
    raise cli.UserError(f"{path}: malformed campaign ({type(e).__name__}: {e})") from None
  known = {x.id for x in checkpoints}
  for item in items.values():
    if item.checkpoint not in known:
      raise cli.UserError(f"{path}: item {item.id} names unknown checkpoint {item.checkpoint}")
  for judge, order in c.assignments.items():
    missing = [i for i in order if i not in items]
    if missing:
      raise cli.UserError(f"{path}: judge {judge} is assigned unknown item {missing[0]}")
  return c
