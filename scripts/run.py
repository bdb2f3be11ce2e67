"""`make run`: the web server and the task worker together, stopped together.

Each child runs in its own session, so a Ctrl-C or a SIGTERM to `make run`'s process group reaches
this supervisor only; it then asks both children to stop (SIGTERM to each one's group), waits up to
STOP_SECONDS in all, and kills what is left, so nothing survives it. When either child exits by
itself, the other is stopped the same way.

    python scripts/run.py --host 127.0.0.1 --port 8000
    python scripts/run.py --command "…" --command "…"     # other commands (the tests use this)
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time

STOP_SECONDS = 8.0


def default_commands(host: str, port: str, venv: str) -> list[list[str]]:
    python = os.path.join(venv, "bin", "python")
    return [
        [python, "manage.py", "qcluster"],
        [os.path.join(venv, "bin", "gunicorn"), "clearance_admin.wsgi", "--bind", f"{host}:{port}", "--workers", "2",
         "--threads", "4", "--access-logfile", "-", "--graceful-timeout", "5"],
    ]


def stop(children: list[subprocess.Popen], deadline_seconds: float = STOP_SECONDS) -> None:
    for child in children:
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and any(c.poll() is None for c in children):
        time.sleep(0.1)
    for child in children:
        try:
            os.killpg(child.pid, signal.SIGKILL)      # the child and anything it started
        except ProcessLookupError:
            pass
        child.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    parser.add_argument("--venv", default=".venv")
    parser.add_argument("--command", action="append", help="a command line to run instead of the defaults")
    args = parser.parse_args(argv)
    commands = [shlex.split(c) for c in args.command] if args.command else default_commands(args.host, args.port,
                                                                                               args.venv)
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    children = [subprocess.Popen(c, start_new_session=True) for c in commands]
    try:
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.2)
    finally:
        stop(children)
    return 0 if stopping else max((c.returncode or 0) for c in children)


if __name__ == "__main__":
    sys.exit(main())
