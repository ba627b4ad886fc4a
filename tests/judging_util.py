"""Shared by the judging tests: small campaigns made from the arith generator (no models),
and the judging server as a real process on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np

from pvg_jax.judging import campaign as campaign_lib
from pvg_jax.judging import server
from pvg_jax.worlds.arith import world as arith_world

XSS = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


def small_campaign(directory: pathlib.Path, *, checkpoints: int = 3, problems: int = 40,
                   judges: int = 6, per_judge: int = 6, k: int = 2, limit_s: float = 45.0,
                   grace_s: float = 2.0, seed: int = 0, xss: bool = False
                   ) -> campaign_lib.Campaign:
  """Checkpoints ckpt_0.. each with a correct (canonical) and an incorrect (flaw-injected)
  solution of the same problems (with `xss`, every solution carries a line of HTML/JS);
  written to directory/campaign.json."""
  import ml_collections

  from configs import arith
  cfg = ml_collections.ConfigDict(arith.get_config("smoke").to_dict())
  world = arith_world.ArithWorld(cfg.world, 0)
  rng = np.random.default_rng(seed)
  cps, items, strata = [], [], []
  for n in range(checkpoints):
    cid = f"round_{n - 1}/helpful" if n else "init/helpful"
    cps.append(campaign_lib.Checkpoint(cid, n - 1, "helpful", "game", f"ckpt {n}"))
    for label in (True, False):
      members = []
      for p in range(problems):
        prob = world.problem("test", p)
        text = world.solution_text(prob, 0 if label else 1, rng)
        lines = arith_world.display_solution(text.split())
        if xss:
          lines = [*lines[:-1], XSS, lines[-1]]
        iid = f"item-{len(items):04d}"
        items.append(campaign_lib.Item(iid, cid, p, arith_world.display_problem(prob.text()),
                                       lines, label, {"checker": label, "judge:0": True},
                                       len(text.split())))
        members.append((iid, p))
      strata.append(members)
  order = campaign_lib.assign(strata, judges, per_judge, k, np.random.default_rng(seed))
  used = {i for o in order for i in o}
  c = campaign_lib.Campaign("test", seed, limit_s, grace_s, per_judge, k, {"workdir": None},
                            cps, {i.id: i for i in items if i.id in used},
                            {f"j{j + 1:02d}": o for j, o in enumerate(order)})
  campaign_lib.save(c, directory)
  return c


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Server:
  """`pvg-judge serve` in a subprocess; .url, .links (admin + judges), .kill()."""

  def __init__(self, directory: pathlib.Path):
    self.directory, self.port = directory, free_port()
    self.url = f"http://127.0.0.1:{self.port}"
    self.proc = None

  def start(self) -> Server:
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "pvg_jax.judging.main", "serve", "--campaign",
         str(self.directory), "--port", str(self.port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    deadline = time.time() + 30
    while time.time() < deadline:
      if self.proc.poll() is not None:
        raise RuntimeError(f"server exited: {self.proc.stdout.read().decode()}")
      with contextlib.suppress(OSError):
        urllib.request.urlopen(self.url + "/static/style.css", timeout=1).close()
        break
      time.sleep(0.1)
    store = server.open_store(self.directory)
    self.links = server.links(store, self.url)
    self.tokens, self.admin = store.tokens(), store.admin_token()
    store.close()
    return self

  def judge_api(self, judge: str) -> str:
    return f"{self.url}/api/judge/{judge}/{self.tokens[judge]}"

  def kill(self) -> None:
    if self.proc and self.proc.poll() is None:
      self.proc.send_signal(signal.SIGKILL)
      self.proc.wait()

  def stop(self) -> None:
    if self.proc and self.proc.poll() is None:
      self.proc.terminate()
      try:
        self.proc.wait(10)
      except subprocess.TimeoutExpired:
        self.kill()
