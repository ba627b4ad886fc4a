"""Human judging (pvg_jax/judging): campaign design, the server's rules over real HTTP,
durability under kill -9, concurrency, export/import, and the analysis recovering known
accuracies. The browser tests are in test_judge_browser.py."""

from __future__ import annotations

import collections
import concurrent.futures
import json
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from pvg_jax import cli
from pvg_jax.judging import analysis, campaign, exchange, scripted, server, store
from tests import judging_util as ju


def _checkpoint_counts(c, order):
  out = collections.Counter()
  for i in order:
    out[(c.items[i].checkpoint, c.items[i].correct)] += 1
  return out


@pytest.mark.parametrize("judges,per_judge,k", [(6, 6, 2), (7, 5, 3), (10, 11, 3), (3, 2, 1)])
def test_assignment_is_balanced_without_repeats(tmp_path, judges, per_judge, k):
  c = ju.small_campaign(tmp_path, judges=judges, per_judge=per_judge, k=k)
  uses = collections.Counter(i for o in c.assignments.values() for i in o)
  for order in c.assignments.values():
    assert len(order) == per_judge
    problems = [c.items[i].problem_index for i in order]
    assert len(set(problems)) == len(problems), "a judge sees a problem twice"
    counts = _checkpoint_counts(c, order)
    for cp in c.checkpoints:
      assert abs(counts[(cp.id, True)] - counts[(cp.id, False)]) <= 1
  assert max(uses.values()) <= k
  # every stratum: all items at k judges but at most k - 1 at k - 1
  strata = collections.defaultdict(list)
  for i, n in uses.items():
    strata[(c.items[i].checkpoint, c.items[i].correct)].append(n)
  for counts in strata.values():
    assert min(counts) >= k - 1 and sum(n < k for n in counts) <= k - 1
  # deterministic from the seed, another seed another design
  again = ju.small_campaign(tmp_path / "again", judges=judges, per_judge=per_judge, k=k)
  other = ju.small_campaign(tmp_path / "other", judges=judges, per_judge=per_judge, k=k, seed=1)
  assert again.assignments == c.assignments != other.assignments


def test_too_small_pool_is_one_line(tmp_path):
  with pytest.raises(cli.UserError, match="lower --judges"):
    ju.small_campaign(tmp_path, problems=3, judges=20, per_judge=6, k=1)


def test_campaign_from_smoke_game(smoke_campaign):
  directory, workdir = smoke_campaign
  c = campaign.load(directory)
  ids = [x.id for x in c.checkpoints]
  assert ids[0].startswith("init/") and any(i.startswith("round_0/") for i in ids)
  assert "baseline/helpful" in ids, "the baseline beside the game was not found"
  # labels are the grader's on exactly the words shown (lines are the clauses)
  from pvg_jax.evals import run as evals_run
  from pvg_jax.worlds.arith import checker
  from pvg_jax.worlds.arith import world as arith_world
  ev_cfg = evals_run.load_config(workdir)
  world = arith_world.ArithWorld(ev_cfg.world, ev_cfg.seed)
  for item in c.items.values():
    words = " ; ".join(item.solution).split()
    assert item.correct == checker.grade(world.problem("test", item.problem_index), words)
  assert {x.correct for x in c.items.values()} == {True, False}
  text = (directory / "campaign.json").read_text()
  tokens = server.open_store(directory).tokens()
  assert not any(t in text for t in tokens.values()), "a token leaked into campaign.json"
  with pytest.raises(cli.UserError, match="never overwritten"):
    from pvg_jax.judging import main
    main.create(main.parser().parse_args(
        ["create", "--workdir", str(workdir), "--campaign", directory.name,
         "--out", str(directory)]))


def test_campaign_from_a_running_game_is_deterministic(smoke_campaign, tmp_path):
  """A game still running (no summary.json, round 1 unfinished): the initial prover and the
  finished round; the same seed gives the same campaign, another seed another one."""
  import shutil
  _, workdir = smoke_campaign
  running = tmp_path / "src"
  shutil.copytree(workdir, running, ignore=shutil.ignore_patterns("judging", "report"))
  (running / "summary.json").unlink()
  (running / "rollouts" / "round_1" / "eval_test.npz").unlink()
  kw = dict(baseline=None, samples=16, roles=("helpful",))
  a = campaign.build(running, "live", **kw)
  assert [x.id for x in a.checkpoints] == ["init/helpful", "round_0/helpful"]
  b = campaign.build(running, "live", **kw)
  assert campaign.to_json(a) == campaign.to_json(b)
  assert campaign.build(running, "live", seed=1, **kw).assignments != a.assignments


# -- the server's rules, with a fake clock --------------------------------------------------

class Clock:
  def __init__(self):
    self.t = 1000.0

  def __call__(self):
    return self.t


def test_server_clock_decides(tmp_path):
  c = ju.small_campaign(tmp_path, limit_s=45, grace_s=2)
  clock = Clock()
  s = store.Store(tmp_path / "judging.db", c, clock=clock)
  j = c.judges[0]
  assert s.current(j).phase == "instructions"
  first = s.start(j)
  assert (first.phase, first.position, first.remaining_s) == ("question", 0, 45)
  clock.t += 30
  again = s.current(j)                      # a reload: same item, the clock kept running
  assert (again.item, again.remaining_s) == (first.item, 15)
  assert s.answer(j, first.item, "correct") == "correct"
  nxt = s.current(j)
  clock.t += 46.5                           # within the grace: the answer counts
  assert s.answer(j, nxt.item, "incorrect") == "incorrect"
  late = s.current(j)
  clock.t += 48                             # past limit + grace: a timeout, whatever it says
  assert s.answer(j, late.item, "correct") == "timeout"
  unanswered = s.current(j)
  clock.t += 100                            # never answered: recorded on the next request
  after = s.current(j)
  assert after.position == unanswered.position + 1
  rows = {r["item"]: r for r in s.judgments()}
  assert rows[unanswered.item]["answer"] == "timeout"
  assert rows[late.item]["submitted"] == "correct"
  with pytest.raises(store.Conflict):
    s.answer(j, first.item, "incorrect")    # a second answer
  with pytest.raises(store.Conflict):
    s.answer(j, c.assignments[j][-1], "correct")   # not the current question
  assert len(s.judgments()) == 4


def test_database_belongs_to_its_campaign(tmp_path):
  c = ju.small_campaign(tmp_path / "a")
  store.Store(tmp_path / "judging.db", c)
  other = ju.small_campaign(tmp_path / "b", seed=3)
  with pytest.raises(cli.UserError, match="another campaign"):
    store.Store(tmp_path / "judging.db", other)


# -- over HTTP ------------------------------------------------------------------------------

@pytest.fixture
def live(tmp_path):
  c = ju.small_campaign(tmp_path, judges=20, per_judge=6, k=3, problems=40, xss=True)
  srv = ju.Server(tmp_path).start()
  yield c, srv
  srv.stop()


def test_http_rules_and_no_label_leaks(live):
  c, srv = live
  a, b = c.judges[:2]
  seen_bodies = []

  def call(*args, **kw):
    status, body = scripted.call(*args, **kw)
    seen_bodies.append(body)
    return status, body
  assert call(srv.url + f"/api/judge/{a}/wrongtoken")[0] == 404
  assert call(srv.url + f"/api/judge/{a}/{srv.tokens[b]}")[0] == 404   # b's token, a's id
  status, state = call(srv.judge_api(a) + "/start", method="POST")
  assert status == 200 and state["phase"] == "question" and state["total"] == 6
  api = srv.judge_api(a)
  assert call(api + "/answer", {"item": "item-9999", "answer": "correct"})[0] == 404
  assert call(api + "/answer", {"item": c.assignments[b][0], "answer": "correct"})[0] in (
      403, 409)
  assert call(api + "/answer", {"item": state["item"], "answer": "maybe"})[0] == 400
  assert call(api + "/answer", {"answer": "correct"})[0] == 400
  assert call(api + "/answer", {"item": state["item"], "answer": "correct"})[0] == 200
  assert call(api + "/answer", {"item": state["item"], "answer": "correct"})[0] == 409
  # b's items are untouched by a's requests
  assert call(srv.judge_api(b))[1]["phase"] == "instructions"
  for body in seen_bodies:
    assert not {"correct", "checkpoint", "label", "simulated"} & set(body)
  # the admin sees labels; a judge token is not an admin token
  assert call(srv.url + f"/api/admin/{srv.tokens[a]}/progress")[0] == 404
  status, progress = call(srv.url + f"/api/admin/{srv.admin}/progress")
  assert status == 200 and progress["judgments"] == 1
  import urllib.request
  with urllib.request.urlopen(srv.url + f"/api/admin/{srv.admin}/export.csv") as r:
    exported = r.read().decode().splitlines()
  assert exported[0].startswith("judge,position,item,checkpoint,correct,answer")
  assert len(exported) == 2 and exported[1].startswith(f"{a},0,{state['item']},")
  assert call(srv.url + f"/api/admin/{srv.admin}/export.xml")[0] == 404
  with urllib.request.urlopen(srv.links["judges"][a]) as r:
    html = r.read().decode()
    csp = r.headers["Content-Security-Policy"]
  assert "script-src 'self'" in csp and "unsafe-inline" not in csp
  assert "<script src=\"/static/judge.js\"" in html and "item-" not in html


def test_concurrent_judges_lose_nothing(live):
  c, srv = live
  acc = {x.id: 0.8 for x in c.checkpoints}
  with concurrent.futures.ThreadPoolExecutor(20) as pool:
    runs = list(pool.map(lambda j: scripted.judge(srv.url, j, srv.tokens[j], c, acc, seed=0),
                         c.judges))
  db = sqlite3.connect(srv.directory / "judging.db")
  rows = db.execute("SELECT judge, item, answer FROM judgments").fetchall()
  expected = {(j, i, a) for j, run in zip(c.judges, runs) for i, a in run}
  assert len(rows) == len(set(rows)) == 20 * 6
  assert set(rows) == expected
  assert {(j, i) for j, i, _ in rows} == {(j, i) for j, o in c.assignments.items() for i in o}


def test_kill9_loses_no_acknowledged_judgment(live):
  """kill -9 while 20 judges are answering: every acknowledged judgment survives, at most
  one unacknowledged one per judge (committed, its response lost), and after a restart each
  judge continues at the question after their last stored one."""
  c, srv = live
  acc = {x.id: 0.7 for x in c.checkpoints}
  with concurrent.futures.ThreadPoolExecutor(20) as pool:
    runs = [pool.submit(scripted.judge, srv.url, j, srv.tokens[j], c, acc, seed=1,
                        delay_s=0.05, stop_on_disconnect=True) for j in c.judges]
    time.sleep(0.3)
    srv.kill()
    acked = {j: r.result() for j, r in zip(c.judges, runs)}
  assert 0 < sum(map(len, acked.values())) < 20 * 6, "the kill did not land mid-campaign"
  srv.start()                                     # a new server on the same database
  rows = store.Store(srv.directory / "judging.db", c).judgments()
  stored = collections.defaultdict(list)
  for r in rows:
    stored[r["judge"]].append((r["item"], r["answer"]))
  for j in c.judges:
    assert stored[j][:len(acked[j])] == acked[j], f"{j} lost an acknowledged judgment"
    assert len(stored[j]) - len(acked[j]) <= 1
    status, state = scripted.call(srv.judge_api(j))
    n = len(stored[j])
    assert status == 200
    if state["phase"] == "question":
      assert state["position"] == n and state["item"] == c.assignments[j][n]
    else:
      assert (state["phase"], n) in (("instructions", 0), ("done", 6))


def test_late_submission_is_a_timeout(tmp_path):
  ju.small_campaign(tmp_path, judges=2, per_judge=2, k=1, limit_s=0.5, grace_s=0.2)
  srv = ju.Server(tmp_path).start()
  try:
    api = srv.judge_api("j01")
    _, state = scripted.call(api + "/start", method="POST")
    time.sleep(1.0)
    status, _ = scripted.call(api + "/answer", {"item": state["item"], "answer": "correct"})
    assert status == 200
    rows = store.Store(tmp_path / "judging.db", campaign.load(tmp_path)).judgments()
    assert [(r["answer"], r["submitted"]) for r in rows] == [("timeout", "correct")]
    assert rows[0]["elapsed_s"] >= 1.0
  finally:
    srv.stop()


# -- the analysis recovers what was put in --------------------------------------------------

def test_analysis_recovers_scripted_accuracies(tmp_path):
  c = ju.small_campaign(tmp_path, checkpoints=3, problems=60, judges=30, per_judge=12, k=3)
  truth = {"init/helpful": 0.95, "round_0/helpful": 0.8, "round_1/helpful": 0.65}
  srv = ju.Server(tmp_path).start()
  try:
    bad = c.judges[:2]                # planted: judges who answer wrong 80% of the time
    for j in c.judges:
      acc = {k: 0.2 for k in truth} if j in bad else truth
      scripted.judge(srv.url, j, srv.tokens[j], c, acc, seed=2)
  finally:
    srv.stop()
  result = analysis.write(tmp_path, resamples=1000)
  assert set(result["excluded_judges"]) == set(bad)
  for cid, p in truth.items():
    d = result["checkpoints"][cid]
    lo, hi = d["accuracy_ci"]
    assert lo <= p <= hi, (cid, p, d["accuracy"], d["accuracy_ci"])
    # binomial width at n=112, p=0.65: 0.18; resampling judges and items each adds about
    # the residual variance once more (the crossed bootstrap is conservative): ~0.25
    assert hi - lo < 0.35
    assert d["judgments"] == 28 * 4 and d["timeout_rate"] == 0
  assert result["checkpoints"]["init/helpful"]["accuracy"] > \
      result["checkpoints"]["round_1/helpful"]["accuracy"] + 0.2
  # small_campaign's checker accepts exactly the correct solutions, its "judge:0" all
  for d in result["checkpoints"].values():
    assert d["simulated"]["checker"] == 1.0 and d["simulated"]["judge:0"] == 0.5
  assert (tmp_path / "human_legibility.png").stat().st_size > 10_000
  assert "two-way" in (tmp_path / "results.md").read_text()


def test_bootstrap_resamples_judges_not_only_judgments():
  """Judges that differ make the two-way interval wider than an items-only one."""
  rng = np.random.default_rng(0)
  n_j, n_i = 20, 40
  skill = np.where(np.arange(n_j) < 10, 0.95, 0.55)
  judge = np.repeat(np.arange(n_j), n_i)
  item = np.tile(np.arange(n_i), n_j)
  right = (rng.random(n_j * n_i) < skill[judge]).astype(float)
  j = analysis.Judgments(judge, item, np.zeros_like(judge), right, np.ones(len(judge), bool),
                         np.zeros(len(judge), bool), np.ones(len(judge)),
                         [str(x) for x in range(n_j)], [str(x) for x in range(n_i)])
  m = {"all": np.ones(len(judge), bool)}
  two = analysis.bootstrap(j, m, 2000, 0)["all"]
  items_only = analysis.bootstrap(j, m, 2000, 0, by_judge=False)["all"]
  assert (two[1] - two[0]) > 1.5 * (items_only[1] - items_only[0])


# -- export / import ------------------------------------------------------------------------

def _jspsych_data(timeline: dict, c, right: float, rng, late: int = -1) -> list[dict]:
  """What jsPsych saves for a participant who ran the exported timeline."""
  out = []
  for n, trial in enumerate(timeline["timeline"]):
    rec = {"trial_type": trial["type"], "trial_index": n, **trial["data"]}
    if "pvg_item" not in trial["data"]:
      rec.update(response=0, rt=1500)
    elif n == late:
      rec.update(response=None, rt=None)
    else:
      item = c.items[trial["data"]["pvg_item"]]
      ok = rng.random() < right
      rec.update(response=0 if item.correct == ok else 1, rt=float(rng.integers(3, 40) * 1000))
    out.append(rec)
  return out


def test_export_keeps_labels_out_and_import_reads_results(tmp_path):
  c = ju.small_campaign(tmp_path, judges=4, per_judge=6, k=2, xss=True)
  paths = exchange.export(tmp_path)
  timelines = [json.loads(p.read_text()) for p in paths if p.name.startswith("timeline_")]
  assert len(timelines) == 4
  text = "".join(p.read_text() for p in paths if "key" not in p.name)
  assert '"correct"' not in text and "checkpoint" not in text.replace("checkpoints", "")
  stimuli = json.dumps(timelines)          # HTML: model text escaped (items.csv is plain text)
  assert "<script>" not in stimuli and "&lt;script&gt;" in stimuli
  trial = timelines[0]["timeline"][1]
  assert trial["trial_duration"] == 45000 and trial["choices"] == ["Correct", "Incorrect"]
  key = json.loads((tmp_path / "export" / "key.json").read_text())
  assert set(key) == set(c.items) and all("correct" in v for v in key.values())

  rng = np.random.default_rng(0)
  data = [_jspsych_data(t, c, 1.0, rng, late=2 if n == 0 else -1)
          for n, t in enumerate(timelines)]
  (tmp_path / "p1.json").write_text(json.dumps(data[0] + data[1]))
  import csv
  with open(tmp_path / "p2.csv", "w", newline="") as f:
    fields = sorted({k for rec in data[2] + data[3] for k in rec})
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    for rec in data[2] + data[3]:
      w.writerow({k: "" if v is None else v for k, v in rec.items()})
  s = server.open_store(tmp_path)
  assert exchange.import_results(s, tmp_path / "p1.json") == 12
  assert exchange.import_results(s, tmp_path / "p2.csv") == 12
  rows = s.judgments()
  assert len(rows) == 24 and sum(r["answer"] == "timeout" for r in rows) == 1
  result = analysis.analyze(c, rows, resamples=200)
  assert result["judgments"] == 24
  assert sum(d["accuracy"] * d["judgments"] for d in result["checkpoints"].values()) == 23
  with pytest.raises(cli.UserError, match="already judged"):
    exchange.import_results(s, tmp_path / "p1.json")


@pytest.mark.parametrize("content,match", [
    ("[{\"pvg_item\": \"item-9999\", \"pvg_judge\": \"j01\"}]", "trial 0: unknown item"),
    ("not json", "not JSON|pvg_item column"),
    ("[1, 2]", "JSON array of trial objects"),
    ("[{\"trial_type\": \"x\"}]", "no trial carries pvg_item"),
])
def test_import_errors_name_file_and_record(tmp_path, content, match):
  ju.small_campaign(tmp_path, judges=2, per_judge=2, k=1)
  path = tmp_path / "bad.json"
  path.write_text(content)
  with pytest.raises(cli.UserError, match=match):
    exchange.import_results(server.open_store(tmp_path), path)


def test_import_error_names_csv_line(tmp_path):
  c = ju.small_campaign(tmp_path, judges=2, per_judge=2, k=1)
  item = c.assignments["j01"][0]
  path = tmp_path / "bad.csv"
  path.write_text(f"pvg_item,pvg_judge,response,rt\n{item},j01,0,1000\n{item},j02,7,1000\n")
  with pytest.raises(cli.UserError, match=r"bad.csv:3: item .* not assigned|bad.csv:3"):
    exchange.import_results(server.open_store(tmp_path), path)


def test_cli_errors_are_one_line(tmp_path):
  run = lambda *a: subprocess.run([sys.executable, "-m", "pvg_jax.judging.main", *a],  # noqa: E731
                                  capture_output=True, text=True)
  r = run("serve", "--campaign", str(tmp_path / "nope"))
  assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no campaign.json" in r.stderr
  r = run("create", "--workdir", str(tmp_path), "--campaign", "x")
  assert r.returncode == 2 and "not a game workdir" in r.stderr
  (tmp_path / "c").mkdir()
  (tmp_path / "c" / "campaign.json").write_text("{\"format\": \"other\"}")
  r = run("analyze", "--campaign", str(tmp_path / "c"))
  assert r.returncode == 2 and "not a pvg-judge-campaign/1 file" in r.stderr


def test_report_shows_each_campaign(tmp_path):
  from pvg_jax.report import build
  directory = tmp_path / "root" / "judging" / "pilot"
  c = ju.small_campaign(directory, judges=4, per_judge=6, k=2)
  s = store.Store(directory / "judging.db", c)
  for j in c.judges:
    s.start(j)
    while (now := s.current(j)).phase == "question":
      s.answer(j, now.item, "correct")       # says "correct" to everything: 0.5 on balance
  out = tmp_path / "report"
  out.mkdir()
  numbers = {}
  lines = build.human_judging(tmp_path / "root", out, numbers)
  text = "\n".join(lines)
  assert "## Human judges: campaign test (judging/pilot)" in text
  assert "fig_human_test.png" in text and (out / "fig_human_test.png").exists()
  assert set(numbers["human test"]) == {x.id for x in c.checkpoints}
  assert all(v == 0.5 for v in numbers["human test"].values())


def test_binding_beyond_loopback_warns(tmp_path):
  ju.small_campaign(tmp_path, judges=2, per_judge=2, k=1)
  proc = subprocess.Popen([sys.executable, "-m", "pvg_jax.judging.main", "serve", "--campaign",
                           str(tmp_path), "--host", "0.0.0.0", "--port", str(ju.free_port())],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    first = proc.stdout.readline()
  finally:
    proc.terminate()
    proc.wait(10)
  assert "reachable from other machines" in first and "reverse proxy with TLS" in first
