"""Run a pvg_jax command on every worker of a Cloud TPU pod slice (the same command on all
hosts; jax.distributed.initialize() reads the pod from the TPU metadata, --multihost).

    python launch/tpu_pod.py --tpu NAME --zone us-central2-b --setup \\
        --workdir /mnt/shared/runs/gsm8k -- python -m pvg_jax.main --config configs/arith.py

`--setup` first clones/updates the code and builds the virtualenv on every worker
(`pip install -e '.[tpu]'`-style: jax[tpu] from the package index). The workdir must be
shared by all workers (a Filestore/NFS mount or a gcsfuse-mounted bucket): Orbax writes
each host's shards there. A preempted (spot) slice sends SIGTERM: the job checkpoints and
exits 75; recreate the slice and run the same command to resume. `--dry_run` prints the
gcloud commands.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys


def gcloud(args, remote: str) -> list[str]:
  return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", args.tpu, f"--zone={args.zone}",
          *([f"--project={args.project}"] if args.project else []), "--worker=all",
          f"--command={remote}"]


def setup_command(args) -> str:
  return " && ".join([
      f"(test -d {args.code} || git clone {shlex.quote(args.repo)} {args.code})",
      f"cd {args.code}", "git pull --ff-only",
      f"python3 -m venv {args.venv}", f"{args.venv}/bin/pip install -U pip",
      f"{args.venv}/bin/pip install 'jax[tpu]' -e .",
  ])


def run_command(args, command: list[str]) -> str:
  return (f"cd {args.code} && source {args.venv}/bin/activate && mkdir -p {args.workdir} && "
          f"{shlex.join(command)} --workdir={args.workdir} --multihost")


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--tpu", required=True, help="TPU VM (pod slice) name")
  p.add_argument("--zone", required=True)
  p.add_argument("--project")
  p.add_argument("--repo", help="git URL the workers clone the code from (with --setup)")
  p.add_argument("--code", default="~/pvg_jax", help="checkout on each worker")
  p.add_argument("--venv", default="~/pvg_jax/.venv")
  p.add_argument("--workdir", required=True, help="shared by all workers")
  p.add_argument("--setup", action="store_true", help="install on every worker first")
  p.add_argument("--dry_run", action="store_true", help="print the gcloud commands")
  p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the pvg_jax command")
  args = p.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command:
    p.error("give the command after --, e.g. -- python -m pvg_jax.main --config ...")
  if args.setup and not args.repo:
    p.error("--setup needs --repo (the git URL the workers clone)")
  steps = ([gcloud(args, setup_command(args))] if args.setup else []) + [
      gcloud(args, run_command(args, command))]
  if args.dry_run:
    for s in steps:
      print(shlex.join(s))
    return 0
  for s in steps:
    code = subprocess.call(s)
    if code:
      return code
  return 0


if __name__ == "__main__":
  sys.exit(main())
