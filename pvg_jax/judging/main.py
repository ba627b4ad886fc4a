"""pvg-judge: time-limited human judging of a game's solutions (docs/human-judging.md).

    pvg-judge create  --workdir RUN --campaign NAME [--limit_s 45 --per_judge 0 --k 3 ...]
    pvg-judge serve   --campaign RUN/judging/NAME [--host 127.0.0.1 --port 8000]
    pvg-judge links   --campaign DIR [--base_url http://host:port]
    pvg-judge export  --campaign DIR                 (jsPsych timelines + CSV, labels apart)
    pvg-judge import  --campaign DIR FILE...         (jsPsych data JSON/CSV)
    pvg-judge analyze --campaign DIR                 (results.json, results.md, figure)

A campaign lives in RUN/judging/NAME/ (or --out): campaign.json (versionable, no secrets),
judging.db (SQLite, the tokens and judgments), links.txt (the judge links; keep private).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import sys

from pvg_jax import cli, files

PROG = "pvg-judge"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _campaign_dir(args) -> pathlib.Path:
  path = pathlib.Path(args.campaign)
  if args.workdir and not path.is_absolute() and len(path.parts) == 1:
    path = pathlib.Path(args.workdir) / "judging" / args.campaign
  if not (path / "campaign.json").exists():
    raise cli.UserError(f"{path}: no campaign.json (make one with pvg-judge create)")
  return path


def _write_links(store, directory: pathlib.Path, base_url: str) -> pathlib.Path:
  from pvg_jax.judging import server
  lk = server.links(store, base_url)
  text = f"admin {lk['admin']}\n" + "".join(f"{j} {u}\n" for j, u in lk["judges"].items())
  path = directory / "links.txt"
  files.atomic_write_text(path, text)
  os.chmod(path, 0o600)
  return path


def create(args) -> None:
  from pvg_jax.judging import campaign
  workdir = pathlib.Path(args.workdir)
  out = pathlib.Path(args.out) if args.out else workdir / "judging" / args.campaign
  if (out / campaign.CAMPAIGN_FILE).exists():
    raise cli.UserError(f"{out / campaign.CAMPAIGN_FILE} exists: a campaign is never "
                        "overwritten; choose another --campaign")
  existing = next(p for p in (out, *out.parents) if p.exists())
  if not os.access(existing, os.W_OK):
    raise cli.UserError(f"{existing} is not writable (a finished workdir may be read-only): "
                        "pass --out DIR for the campaign")
  c = campaign.build(workdir, args.campaign, baseline=args.baseline, judges=args.judges,
                     per_judge=args.per_judge, k=args.k, limit_s=args.limit_s,
                     grace_s=args.grace_s, seed=args.seed, roles=tuple(args.roles.split(",")),
                     problems=args.problems, samples=args.samples,
                     simulated_panel=not args.no_panel)
  path = campaign.save(c, out)
  per_ckpt = {x.id: 0 for x in c.checkpoints}
  for item in c.items.values():
    per_ckpt[item.checkpoint] += 1
  print(f"{path}: {len(c.judges)} judges x {c.per_judge} solutions, k={c.k}, "
        f"{c.limit_s:g} s each; {len(c.items)} solutions from " +
        ", ".join(f"{k} ({n})" for k, n in per_ckpt.items()))
  print(f"next: {PROG} serve --campaign {out}")


def serve(args) -> None:
  import uvicorn

  from pvg_jax.judging import server
  directory = _campaign_dir(args)
  store = server.open_store(directory)
  if args.host not in LOOPBACK:
    logging.warning("binding %s: the app is reachable from other machines. Put it behind a "
                    "reverse proxy with TLS (docs/human-judging.md); tokens travel in URLs.",
                    args.host)
  base = args.base_url or f"http://{args.host}:{args.port}"
  path = _write_links(store, directory, base)
  progress = store.progress()
  print(f"{PROG}: campaign {store.campaign.name}: {progress['judgments']} judgments so far; "
        f"judge links and the admin link in {path}", flush=True)
  uvicorn.run(server.create_app(store), host=args.host, port=args.port, log_level="warning")


def links(args) -> None:
  from pvg_jax.judging import server
  directory = _campaign_dir(args)
  path = _write_links(server.open_store(directory), directory, args.base_url)
  sys.stdout.write(path.read_text())


def export(args) -> None:
  from pvg_jax.judging import exchange
  directory = _campaign_dir(args)
  for path in exchange.export(directory, pathlib.Path(args.out) if args.out else None):
    print(path)


def import_(args) -> None:
  from pvg_jax.judging import exchange, server
  directory = _campaign_dir(args)
  store = server.open_store(directory)
  for f in args.files:
    n = exchange.import_results(store, pathlib.Path(f))
    print(f"{f}: {n} judgments imported")


def analyze(args) -> None:
  from pvg_jax.judging import analysis
  directory = _campaign_dir(args)
  result = analysis.write(directory, exclude_at_or_below=args.exclude_at_or_below,
                          min_judgments=args.min_judgments, resamples=args.resamples)
  print(directory / "results.md")
  print(json.dumps({k: v["accuracy"] for k, v in result["checkpoints"].items()}, indent=1))


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
  sub = p.add_subparsers(dest="command", required=True)

  def where(s, workdir_required=False):
    s.add_argument("--campaign", required=True,
                   help="campaign directory (or its NAME together with --workdir)")
    s.add_argument("--workdir", required=workdir_required, help="the game's workdir")

  c = sub.add_parser("create", help="a campaign from a game's workdir")
  where(c, workdir_required=True)
  c.add_argument("--out", help="campaign directory (default WORKDIR/judging/NAME)")
  c.add_argument("--baseline", help="the correctness-only baseline's workdir (default: "
                 "../correctness beside WORKDIR when there is one)")
  c.add_argument("--limit_s", type=float, default=45.0, help="seconds per solution (K: 45)")
  c.add_argument("--grace_s", type=float, default=2.0,
                 help="network slack after the limit before an answer counts as a timeout")
  c.add_argument("--per_judge", type=int, default=0,
                 help="solutions per judge (0: one correct and one incorrect per checkpoint)")
  c.add_argument("--k", type=int, default=3, help="judges per solution")
  c.add_argument("--judges", type=int, default=0, help="judges (0: as many as the pools "
                 "allow, up to 100)")
  c.add_argument("--roles", default="helpful,sneaky", help="prover roles to judge")
  c.add_argument("--problems", type=int, default=0,
                 help="held-out problems (0: the config's evals.test_problems)")
  c.add_argument("--samples", type=int, default=0,
                 help="samples per problem (0: the config's evals.samples_per_problem)")
  c.add_argument("--no_panel", action="store_true", help="skip the model-judge panel's "
                 "verdicts on the campaign's solutions (the budgeted checker's are kept)")
  c.add_argument("--seed", type=int, default=0)
  c.set_defaults(fn=create)

  s = sub.add_parser("serve", help="run the judging app")
  where(s)
  s.add_argument("--host", default="127.0.0.1")
  s.add_argument("--port", type=int, default=8000)
  s.add_argument("--base_url", help="the URL judges reach (behind a proxy); default "
                 "http://HOST:PORT")
  s.set_defaults(fn=serve)

  lk = sub.add_parser("links", help="print (and write links.txt with) the judge links")
  where(lk)
  lk.add_argument("--base_url", default="http://127.0.0.1:8000")
  lk.set_defaults(fn=links)

  e = sub.add_parser("export", help="jsPsych timelines and CSV for other platforms")
  where(e)
  e.add_argument("--out", help="directory (default CAMPAIGN/export)")
  e.set_defaults(fn=export)

  i = sub.add_parser("import", help="read jsPsych results (data JSON or CSV)")
  where(i)
  i.add_argument("files", nargs="+")
  i.set_defaults(fn=import_)

  a = sub.add_parser("analyze", help="human accuracy per checkpoint with intervals")
  where(a)
  a.add_argument("--exclude_at_or_below", type=float, default=0.5,
                 help="exclude judges whose accuracy on their answered solutions is at or "
                 "below this (K excluded trainers at chance)")
  a.add_argument("--min_judgments", type=int, default=10,
                 help="the exclusion rule applies to judges with at least this many answers")
  a.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
  a.set_defaults(fn=analyze)
  return p


def main(argv: list[str] | None = None) -> None:
  args = parser().parse_args(argv)
  logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
  with cli.errors(PROG):
    args.fn(args)


def run() -> None:
  main()


if __name__ == "__main__":
  main()
