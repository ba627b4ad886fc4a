"""The judging web app (Starlette on uvicorn): judge pages, the admin page, a JSON API.

    /j/<judge>/<token>                       a judge's page (instructions, Start, questions)
    /admin/<token>                           progress per judge and checkpoint, exports
    GET  /api/judge/<judge>/<token>          the judge's current state
    POST /api/judge/<judge>/<token>/start    start (once; later calls change nothing)
    POST /api/judge/<judge>/<token>/answer   {"item": id, "answer": "correct"|"incorrect"|
                                             "timeout"} -> the next state
    GET  /api/admin/<token>/progress         JSON
    GET  /api/admin/<token>/export.csv|.jsonl  every judgment with its checkpoint and label

What the design guarantees (docs/human-judging.md):
- the server's clock decides: an item's clock starts when the server first serves it, a
  reload shows the time left, an answer past limit + grace is stored as a timeout;
- the label of an item and its checkpoint never appear in a judge response; pages are
  static files and model text only ever enters the page through textContent; every
  response carries a Content-Security-Policy without inline script;
- tokens are compared in constant time; a judge's token opens only that judge's items; a
  malformed request, an unknown item, a second answer gets a 4xx JSON error and changes
  nothing; each judgment is committed before its response is sent.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pvg_jax.judging import campaign as campaign_lib
from pvg_jax.judging import store as store_lib

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",          # the token is in the URL
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC = {"judge.js": "text/javascript", "admin.js": "text/javascript",
          "style.css": "text/css"}
EXPORT_FIELDS = ("judge", "position", "item", "checkpoint", "correct", "answer", "submitted",
                 "right", "elapsed_s", "submitted_at", "source")


def _static(name: str) -> bytes:
  return importlib.resources.files("pvg_jax.judging").joinpath("static", name).read_bytes()


def _error(status: int, message: str) -> JSONResponse:
  return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)


def _json(data) -> JSONResponse:
  return JSONResponse(data, headers=SECURITY_HEADERS)


def export_rows(store: store_lib.Store) -> list[dict]:
  """Every judgment with its checkpoint, the label and whether the answer was right."""
  c = store.campaign
  out = []
  for r in store.judgments():
    it = c.items[r["item"]]
    right = r["answer"] != store_lib.TIMEOUT and (r["answer"] == "correct") == it.correct
    out.append({**r, "checkpoint": it.checkpoint, "correct": it.correct, "right": right})
  return out


def to_csv(rows: list[dict]) -> str:
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, lineterminator="\n")
  w.writeheader()
  w.writerows({k: r[k] for k in EXPORT_FIELDS} for r in rows)
  return buf.getvalue()


def create_app(store: store_lib.Store) -> Starlette:
  c = store.campaign

  def state(judge: str) -> dict:
    now = store.current(judge)
    out = {"phase": now.phase, "total": len(c.assignments[judge]), "limit_s": c.limit_s,
           "campaign": c.name}
    if now.phase == "question":
      it = c.items[now.item]
      out.update(position=now.position, item=it.id, problem=it.problem,
                 solution=it.solution, remaining_s=round(now.remaining_s, 3))
    elif now.phase == "done":
      out["position"] = now.position
    return out

  def judge_of(request: Request) -> str | None:
    judge, token = request.path_params["judge"], request.path_params["token"]
    return judge if store.check_judge(judge, token) else None

  def page(name: str):
    def endpoint(request: Request) -> Response:
      ok = (judge_of(request) if name == "judge.html"
            else store.check_admin(request.path_params["token"]))
      if not ok:
        return Response("Unknown link.", status_code=404, headers=SECURITY_HEADERS,
                        media_type="text/plain")
      return Response(_static(name), headers=SECURITY_HEADERS, media_type="text/html")
    return endpoint

  def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
      return _error(404, "no such file")
    return Response(_static(name), media_type=STATIC[name], headers=SECURITY_HEADERS)

  def get_state(request: Request) -> Response:
    judge = judge_of(request)
    return _error(404, "unknown judge link") if judge is None else _json(state(judge))

  def start(request: Request) -> Response:
    judge = judge_of(request)
    if judge is None:
      return _error(404, "unknown judge link")
    store.start(judge)
    return _json(state(judge))

  async def answer(request: Request) -> Response:
    judge = judge_of(request)
    if judge is None:
      return _error(404, "unknown judge link")
    try:
      body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
      return _error(400, "the body must be JSON: {\"item\": ..., \"answer\": ...}")
    if not isinstance(body, dict) or not isinstance(body.get("item"), str) or \
        body.get("answer") not in (*store_lib.ANSWERS, store_lib.TIMEOUT):
      return _error(400, "need {\"item\": <id>, \"answer\": \"correct\" | \"incorrect\" | "
                         "\"timeout\"}")
    item = body["item"]
    if item not in c.items:
      return _error(404, f"unknown item {item!r}")
    if item not in c.assignments[judge]:
      return _error(403, f"{item} is not one of this judge's items")
    from starlette.concurrency import run_in_threadpool
    try:
      await run_in_threadpool(store.answer, judge, item, body["answer"])
    except store_lib.Conflict as e:
      return _error(409, str(e))
    return _json(await run_in_threadpool(state, judge))

  def admin(request: Request):
    return store.check_admin(request.path_params["token"])

  def progress(request: Request) -> Response:
    if not admin(request):
      return _error(404, "unknown admin link")
    return _json({"campaign": c.name, "limit_s": c.limit_s, **store.progress()})

  def export(request: Request) -> Response:
    if not admin(request):
      return _error(404, "unknown admin link")
    fmt = request.path_params["fmt"]
    if fmt not in ("csv", "jsonl"):
      return _error(404, "export formats: export.csv, export.jsonl")
    rows = export_rows(store)
    if fmt == "csv":
      return Response(to_csv(rows), media_type="text/csv", headers={
          **SECURITY_HEADERS, "Content-Disposition": f"attachment; filename={c.name}.csv"})
    body = "".join(json.dumps(r) + "\n" for r in rows)
    return Response(body, media_type="application/x-ndjson", headers={
        **SECURITY_HEADERS, "Content-Disposition": f"attachment; filename={c.name}.jsonl"})

  def not_found(request: Request, exc) -> Response:
    return _error(getattr(exc, "status_code", 404), getattr(exc, "detail", "not found"))

  routes = [
      Route("/j/{judge}/{token}", page("judge.html")),
      Route("/admin/{token}", page("admin.html")),
      Route("/static/{name}", static),
      Route("/api/judge/{judge}/{token}", get_state),
      Route("/api/judge/{judge}/{token}/start", start, methods=["POST"]),
      Route("/api/judge/{judge}/{token}/answer", answer, methods=["POST"]),
      Route("/api/admin/{token}/progress", progress),
      Route("/api/admin/{token}/export.{fmt:str}", export),
  ]
  return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})


def links(store: store_lib.Store, base_url: str) -> dict:
  """The admin link and every judge's link."""
  base = base_url.rstrip("/")
  return {"admin": f"{base}/admin/{store.admin_token()}",
          "judges": {j: f"{base}/j/{j}/{t}" for j, t in sorted(store.tokens().items())}}


def open_store(directory, clock=None) -> store_lib.Store:
  import pathlib
  c = campaign_lib.load(directory)
  path = pathlib.Path(directory)
  path = path if path.is_dir() else path.parent
  kw = {"clock": clock} if clock is not None else {}
  return store_lib.Store(path / "judging.db", c, **kw)
