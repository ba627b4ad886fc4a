"""A campaign for the platforms labs already use, and their results back in.

`export(directory)` writes <campaign>/export/:

    jspsych/timeline_<judge>.json   one jsPsych timeline per judge: an instructions trial
                                    with a Start button, then the judge's solutions as
                                    html-button-response trials (choices Correct /
                                    Incorrect, trial_duration = the limit), the text
                                    HTML-escaped, data fields pvg_campaign / pvg_judge /
                                    pvg_item / pvg_position; no labels
    items.csv                       judge, position, item, problem, solution (no labels)
    key.json, key.csv               item -> checkpoint and label: keep these from judges

`import_results(store, path)` reads what jsPsych's `jsPsych.data.get().json()` or `.csv()`
saves: trials carrying pvg_item; response 0 = Correct, 1 = Incorrect, null / empty = the
trial timed out; rt in milliseconds, an rt past limit + grace counts as a timeout as on the
server. All of a file's judgments are stored or none; a bad record is a one-line error
naming the file and the record.
"""

from __future__ import annotations

import csv
import html
import io
import json
import pathlib

from pvg_jax import cli, files
from pvg_jax.judging import campaign as campaign_lib
from pvg_jax.judging import store as store_lib

CHOICES = ("Correct", "Incorrect")
PLUGIN = "html-button-response"     # jsPsych's jsPsychHtmlButtonResponse


def instructions_html(c: campaign_lib.Campaign, n: int) -> str:
  return (f"<h1>Is this solution correct?</h1><p>You will see {n} math word problems, each "
          "with a worked solution. Decide whether the solution's final answer is correct or "
          "incorrect. The answer is the first line that starts with <em>answer</em>; "
          f"anything written after it does not count. You have {c.limit_s:g} seconds per "
          "solution; when the time is up the question closes unanswered. No calculator or "
          "other tools. You will not be told whether you were right.</p>")


def stimulus_html(item: campaign_lib.Item, position: int, n: int) -> str:
  """The trial's stimulus; every model-written text is escaped."""
  steps = "".join(f"<li>{html.escape(line)}</li>" for line in item.solution)
  return (f'<p class="pvg-counter">Question {position + 1} of {n}</p>'
          f'<p class="pvg-problem">{html.escape(item.problem)}</p>'
          f'<ol class="pvg-solution">{steps}</ol>')


def timeline(c: campaign_lib.Campaign, judge: str) -> dict:
  order = c.assignments[judge]
  trials = [{"type": PLUGIN, "stimulus": instructions_html(c, len(order)),
             "choices": ["Start"], "data": {"pvg_campaign": c.name, "pvg_judge": judge,
                                            "pvg_part": "instructions"}}]
  for pos, item in enumerate(order):
    trials.append({
        "type": PLUGIN, "stimulus": stimulus_html(c.items[item], pos, len(order)),
        "choices": list(CHOICES), "trial_duration": int(round(c.limit_s * 1000)),
        "response_ends_trial": True,
        "data": {"pvg_campaign": c.name, "pvg_judge": judge, "pvg_item": item,
                 "pvg_position": pos}})
  return {"campaign": c.name, "judge": judge, "limit_s": c.limit_s, "timeline": trials}


def _csv(rows: list[dict], fields: list[str]) -> str:
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
  w.writeheader()
  w.writerows(rows)
  return buf.getvalue()


def export(directory: pathlib.Path, out: pathlib.Path | None = None) -> list[pathlib.Path]:
  c = campaign_lib.load(directory)
  out = out or pathlib.Path(directory) / "export"
  written = []
  for judge in c.judges:
    path = out / "jspsych" / f"timeline_{judge}.json"
    files.atomic_write_text(path, json.dumps(timeline(c, judge), indent=1) + "\n")
    written.append(path)
  rows = [{"judge": j, "position": p, "item": i, "problem": c.items[i].problem,
           "solution": "\n".join(c.items[i].solution)}
          for j, order in c.assignments.items() for p, i in enumerate(order)]
  files.atomic_write_text(out / "items.csv", _csv(rows, list(rows[0])))
  key = {i: {"checkpoint": it.checkpoint, "correct": it.correct} for i, it in c.items.items()}
  files.atomic_write_text(out / "key.json", json.dumps(key, indent=1) + "\n")
  files.atomic_write_text(out / "key.csv", _csv(
      [{"item": i, **v} for i, v in key.items()], ["item", "checkpoint", "correct"]))
  return [*written, out / "items.csv", out / "key.json", out / "key.csv"]


def _records(path: pathlib.Path) -> list[tuple[str, dict]]:
  """(where, record) of every trial in a jsPsych data file (JSON array or CSV)."""
  if not path.is_file():
    raise cli.UserError(f"{path}: no such results file")
  try:
    text = path.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise cli.UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
  if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise cli.UserError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
      raise cli.UserError(f"{path}: expected jsPsych data, a JSON array of trial objects")
    return [(f"{path}: trial {n}", r) for n, r in enumerate(data)]
  reader = csv.DictReader(io.StringIO(text))
  if not reader.fieldnames or "pvg_item" not in reader.fieldnames:
    raise cli.UserError(f"{path}: a jsPsych CSV needs a pvg_item column (exported timelines "
                        "carry it)")
  return [(f"{path}:{n + 2}", r) for n, r in enumerate(reader)]


def _blank(v) -> bool:
  return v is None or v == "" or v == "null"


def parse_results(c: campaign_lib.Campaign, path: pathlib.Path) -> list[dict]:
  rows, seen = [], set()
  limit_ms = (c.limit_s + c.grace_s) * 1000
  for where, r in _records(path):
    if _blank(r.get("pvg_item")):
      continue                              # instructions and other trials
    item, judge = str(r["pvg_item"]), str(r.get("pvg_judge", ""))
    if not _blank(r.get("pvg_campaign")) and r["pvg_campaign"] != c.name:
      raise cli.UserError(f"{where}: from campaign {r['pvg_campaign']!r}, not {c.name!r}")
    if item not in c.items:
      raise cli.UserError(f"{where}: unknown item {item!r}")
    if judge not in c.assignments or item not in c.assignments[judge]:
      raise cli.UserError(f"{where}: item {item} is not assigned to judge {judge!r}")
    if (judge, item) in seen:
      raise cli.UserError(f"{where}: judge {judge} answers {item} a second time")
    seen.add((judge, item))
    response, rt = r.get("response"), r.get("rt")
    try:
      rt_ms = None if _blank(rt) else float(rt)
      choice = None if _blank(response) else int(float(response))
    except (TypeError, ValueError):
      raise cli.UserError(f"{where}: response {response!r} / rt {rt!r} are not numbers") \
          from None
    if choice not in (None, 0, 1):
      raise cli.UserError(f"{where}: response {choice} is not 0 (Correct) or 1 (Incorrect)")
    submitted = store_lib.TIMEOUT if choice is None else store_lib.ANSWERS[choice]
    late = rt_ms is None or rt_ms > limit_ms
    rows.append({"judge": judge, "item": item,
                 "position": c.assignments[judge].index(item),
                 "answer": store_lib.TIMEOUT if late else submitted, "submitted": submitted,
                 "elapsed_s": c.limit_s if rt_ms is None else rt_ms / 1000})
  if not rows:
    raise cli.UserError(f"{path}: no trial carries pvg_item: is this a pvg-judge timeline's "
                        "data?")
  return rows


def import_results(store: store_lib.Store, path: pathlib.Path) -> int:
  return store.add_imported(parse_results(store.campaign, path), f"jspsych:{path.name}")
