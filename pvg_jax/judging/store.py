"""The campaign's judgments in SQLite (WAL): the server's clock and every answer, durable.

Tables (judging.db beside campaign.json):

    meta       campaign digest (a database belongs to one campaign) and the admin token
    judges     id, token (secrets.token_urlsafe), started_at
    served     (judge, position) -> item, served_at: when the server first showed the item;
               a reload shows the same item with the time that is left, never a new clock
    judgments  (judge, item) primary key -> answer counted ('correct' | 'incorrect' |
               'timeout'), what the page sent, server-measured elapsed seconds, source

Every write is one transaction committed (synchronous=FULL) before the caller answers, so a
kill -9 loses no acknowledged judgment. Times come from `clock` (time.time by default; tests
pass a fake).
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable

from pvg_jax import cli
from pvg_jax.judging import campaign as campaign_lib

ANSWERS = ("correct", "incorrect")
TIMEOUT = "timeout"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judges (id TEXT PRIMARY KEY, token TEXT NOT NULL,
                                   started_at REAL);
CREATE TABLE IF NOT EXISTS served (judge TEXT NOT NULL, position INTEGER NOT NULL,
                                   item TEXT NOT NULL, served_at REAL NOT NULL,
                                   PRIMARY KEY (judge, position));
CREATE TABLE IF NOT EXISTS judgments (judge TEXT NOT NULL, item TEXT NOT NULL,
                                      position INTEGER NOT NULL, answer TEXT NOT NULL,
                                      submitted TEXT, elapsed_s REAL NOT NULL,
                                      submitted_at REAL NOT NULL, source TEXT NOT NULL,
                                      PRIMARY KEY (judge, item));
"""


class Conflict(Exception):  # noqa: N818 (an HTTP 409, not a failure)
  """A request that would change nothing: already answered, not this judge's item now."""


@dataclasses.dataclass(frozen=True)
class Current:
  """What a judge should see now."""
  phase: str                 # "instructions" | "question" | "done"
  position: int = 0          # 0-based index of the question
  item: str = ""
  remaining_s: float = 0.0


class Store:
  """One campaign's database; safe to share between the server's threads."""

  def __init__(self, path, campaign: campaign_lib.Campaign,
               clock: Callable[[], float] = time.time):
    self.path, self.campaign, self.clock = path, campaign, clock
    self._local = threading.local()
    self._write = threading.Lock()
    self._db().executescript(SCHEMA)     # CREATE IF NOT EXISTS: idempotent
    with self._tx() as db:
      digest = campaign.digest()
      row = db.execute("SELECT value FROM meta WHERE key='campaign'").fetchone()
      if row is None:
        db.execute("INSERT INTO meta VALUES ('campaign', ?)", (digest,))
        db.execute("INSERT INTO meta VALUES ('admin_token', ?)", (secrets.token_urlsafe(24),))
        db.executemany("INSERT INTO judges (id, token) VALUES (?, ?)",
                       [(j, secrets.token_urlsafe(16)) for j in campaign.judges])
      elif row[0] != digest:
        raise cli.UserError(f"{path} belongs to another campaign (digest {row[0]}, this "
                            f"campaign.json is {digest}); it was changed after judging began")

  # -- connections -------------------------------------------------------------------------

  def _db(self) -> sqlite3.Connection:
    db = getattr(self._local, "db", None)
    if db is None:
      db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                           check_same_thread=False)
      db.execute("PRAGMA journal_mode=WAL")
      db.execute("PRAGMA synchronous=FULL")
      self._local.db = db
    return db

  @contextlib.contextmanager
  def _tx(self):
    """One write transaction (BEGIN IMMEDIATE ... COMMIT), serialized in this process."""
    db = self._db()
    with self._write:
      db.execute("BEGIN IMMEDIATE")
      try:
        yield db
      except BaseException:
        db.execute("ROLLBACK")
        raise
      db.execute("COMMIT")

  # -- tokens ------------------------------------------------------------------------------

  def tokens(self) -> dict[str, str]:
    return dict(self._db().execute("SELECT id, token FROM judges").fetchall())

  def admin_token(self) -> str:
    return self._db().execute("SELECT value FROM meta WHERE key='admin_token'").fetchone()[0]

  def check_judge(self, judge: str, token: str) -> bool:
    row = self._db().execute("SELECT token FROM judges WHERE id=?", (judge,)).fetchone()
    expected = row[0] if row else secrets.token_urlsafe(16)   # same work when unknown
    return secrets.compare_digest(expected.encode(), token.encode()) and row is not None

  def check_admin(self, token: str) -> bool:
    return secrets.compare_digest(self.admin_token().encode(), token.encode())

  # -- a judge's session -------------------------------------------------------------------

  def start(self, judge: str) -> Current:
    with self._tx() as db:
      db.execute("UPDATE judges SET started_at=? WHERE id=? AND started_at IS NULL",
                 (self.clock(), judge))
    return self.current(judge)

  def current(self, judge: str) -> Current:
    """The judge's question now, serving it (and starting its clock) the first time; an item
    whose time and grace ran out unanswered is recorded as a timeout and skipped."""
    order = self.campaign.assignments[judge]
    c = self.campaign
    while True:
      with self._tx() as db:
        started = db.execute("SELECT started_at FROM judges WHERE id=?", (judge,)).fetchone()
        if started[0] is None:
          return Current("instructions")
        position = db.execute("SELECT COUNT(*) FROM judgments WHERE judge=?",
                              (judge,)).fetchone()[0]
        if position >= len(order):
          return Current("done", position)
        item, now = order[position], self.clock()
        row = db.execute("SELECT served_at FROM served WHERE judge=? AND position=?",
                         (judge, position)).fetchone()
        if row is None:
          db.execute("INSERT INTO served VALUES (?, ?, ?, ?)", (judge, position, item, now))
          served_at = now
        else:
          served_at = row[0]
        elapsed = now - served_at
        if elapsed <= c.limit_s + c.grace_s:
          return Current("question", position, item, max(0.0, c.limit_s - elapsed))
        db.execute("INSERT INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (judge, item, position, TIMEOUT, None, elapsed, now, "server"))

  def answer(self, judge: str, item: str, submitted: str) -> str:
    """Record the judge's answer to `item`; returns what was counted ('timeout' when the
    server's clock says the limit plus grace had passed, whatever the page sent).
    Raises KeyError (unknown item), Conflict (answered, or not this judge's item now)."""
    if item not in self.campaign.items:
      raise KeyError(item)
    if submitted not in (*ANSWERS, TIMEOUT):
      raise ValueError(f"answer must be one of {(*ANSWERS, TIMEOUT)}")
    with self._tx() as db:
      if db.execute("SELECT 1 FROM judgments WHERE judge=? AND item=?",
                    (judge, item)).fetchone():
        raise Conflict(f"{item} is already answered")
      position = db.execute("SELECT COUNT(*) FROM judgments WHERE judge=?",
                            (judge,)).fetchone()[0]
      order = self.campaign.assignments[judge]
      served = db.execute("SELECT item, served_at FROM served WHERE judge=? AND position=?",
                          (judge, position)).fetchone()
      if position >= len(order) or served is None or served[0] != item:
        raise Conflict(f"{item} is not this judge's current question")
      t = self.clock()
      elapsed = t - served[1]
      late = elapsed > self.campaign.limit_s + self.campaign.grace_s
      counted = TIMEOUT if late else submitted
      db.execute("INSERT INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (judge, item, position, counted, submitted, elapsed, t, "server"))
    return counted

  # -- imports and reading -----------------------------------------------------------------

  def add_imported(self, rows: list[dict], source: str) -> int:
    """Judgments made elsewhere (pvg-judge import): all or none; a (judge, item) already
    judged is an error naming it."""
    with self._tx() as db:
      for r in rows:
        if db.execute("SELECT 1 FROM judgments WHERE judge=? AND item=?",
                      (r["judge"], r["item"])).fetchone():
          raise cli.UserError(f"{source}: judge {r['judge']} already judged {r['item']}")
        db.execute("INSERT INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (r["judge"], r["item"], r["position"], r["answer"], r["submitted"],
                    r["elapsed_s"], self.clock(), source))
    return len(rows)

  def judgments(self) -> list[dict]:
    cur = self._db().execute("SELECT judge, item, position, answer, submitted, elapsed_s, "
                             "submitted_at, source FROM judgments ORDER BY judge, position")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]

  def progress(self) -> dict:
    """Per judge and per checkpoint: judgments made of those assigned."""
    rows = self.judgments()
    started = dict(self._db().execute("SELECT id, started_at FROM judges").fetchall())
    c = self.campaign
    per_judge = {j: {"assigned": len(o), "answered": 0, "timeouts": 0,
                     "started": started.get(j) is not None} for j, o in c.assignments.items()}
    per_ckpt = {x.id: {"label": x.label, "assigned": 0, "answered": 0, "right": 0}
                for x in c.checkpoints}
    for order in c.assignments.values():
      for item in order:
        per_ckpt[c.items[item].checkpoint]["assigned"] += 1
    for r in rows:
      per_judge[r["judge"]]["answered"] += 1
      per_judge[r["judge"]]["timeouts"] += r["answer"] == TIMEOUT
      it = c.items[r["item"]]
      p = per_ckpt[it.checkpoint]
      p["answered"] += 1
      p["right"] += (r["answer"] == "correct") == it.correct and r["answer"] != TIMEOUT
    return {"judges": per_judge, "checkpoints": per_ckpt, "judgments": len(rows)}

  def close(self) -> None:
    db = getattr(self._local, "db", None)
    if db is not None:
      db.close()
      self._local.db = None
