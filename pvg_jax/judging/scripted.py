"""A scripted judge that goes through the HTTP API like a person, with a known accuracy per
checkpoint: it reads the labels from the campaign file (which a real judge never sees) and
answers right with the given probability. For dry runs of a campaign and for testing that
the analysis recovers what was put in."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request

import numpy as np

from pvg_jax.judging import campaign as campaign_lib

# what a server killed mid-request raises: a refused or reset connection (OSError), or a
# response cut off after its headers (http.client.IncompleteRead, an HTTPException)
DISCONNECTED = (OSError, http.client.HTTPException)


def call(url: str, body: dict | None = None, method: str | None = None) -> tuple[int, dict]:
  """(status, JSON body) of one request; 4xx/5xx are returned, not raised."""
  data = None if body is None else json.dumps(body).encode()
  req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                               headers={"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(req, timeout=30) as r:
      return r.status, json.loads(r.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read() or b"{}")


def judge(base_url: str, judge_id: str, token: str, c: campaign_lib.Campaign,
          accuracy: dict[str, float], seed: int, stop_after: int | None = None,
          delay_s: float = 0.0, stop_on_disconnect: bool = False) -> list[tuple[str, str]]:
  """Answer the judge's questions (all, or the first `stop_after`); returns the
  acknowledged (item, answer) pairs in order (up to a lost connection, with
  `stop_on_disconnect`)."""
  api = f"{base_url.rstrip('/')}/api/judge/{judge_id}/{token}"
  rng = np.random.default_rng([seed, int(judge_id.lstrip("j") or 0)])
  done: list[tuple[str, str]] = []
  try:
    status, state = call(api + "/start", method="POST")
  except DISCONNECTED:
    if stop_on_disconnect:
      return done
    raise
  while status == 200 and state["phase"] == "question":
    if stop_after is not None and len(done) >= stop_after:
      break
    item = c.items[state["item"]]
    right = rng.random() < accuracy[item.checkpoint]
    answer = "correct" if item.correct == right else "incorrect"
    if delay_s:
      time.sleep(delay_s)
    try:
      status, state = call(api + "/answer", {"item": item.id, "answer": answer})
    except DISCONNECTED:                     # the server went away: stop, keep what was acked
      if stop_on_disconnect:
        break
      raise
    if status != 200:
      raise RuntimeError(f"{judge_id}: {status} {state}")
    done.append((item.id, answer))
  return done
