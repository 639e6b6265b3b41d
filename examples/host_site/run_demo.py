"""Set up and serve the demo: ``python -m examples.host_site.run_demo [--no-serve]``.

Runs the commands a merchant would type, with ``FLASK_APP`` pointed at this site: create
the site's tables, koudai's schema, the demo catalog and the demo accounts. Every step
can run again, so starting the demo twice keeps the data of the first run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from examples.host_site.commands import DEMO_ACCOUNTS

REPO_ROOT = Path(__file__).resolve().parents[2]
FLASK_APP = "examples.host_site.app"
HOST = "127.0.0.1"

SETUP_STEPS: list[list[str]] = [
    ["init-db"],
    ["koudai", "db", "upgrade"],
    ["koudai", "demo", "seed"],
    ["seed-users"],
]


def flask(*args: str) -> list[str]:
    """The command line of ``flask ARGS`` with this interpreter (the project's venv)."""
    return [sys.executable, "-m", "flask", *args]


def set_up(env: dict[str, str]) -> None:
    for step in SETUP_STEPS:
        print(f"$ flask {' '.join(step)}", flush=True)
        subprocess.run(flask(*step), env=env, cwd=REPO_ROOT, check=True)


def print_welcome(port: int) -> None:
    base = f"http://{HOST}:{port}"
    print()
    print("Camellia Store demo (koudai_flask embedded in an existing Flask site)")
    print(f"  Site home    {base}/")
    print(f"  Shop         {base}/shop/")
    print(f"  Back office  {base}/shop-admin/")
    print("Logins (email / password):")
    for account in DEMO_ACCOUNTS:
        role = account.role or "buyer, no back-office access"
        print(f"  {account.email:<22} {account.password:<18} {role}")
    print(flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 5000))
    parser.add_argument("--no-serve", action="store_true", help="set up, print, and stop")
    options = parser.parse_args(argv)
    env = {**os.environ, "FLASK_APP": FLASK_APP}
    try:
        set_up(env)
    except subprocess.CalledProcessError as exc:
        print(f"demo set-up failed at: flask {' '.join(exc.cmd[3:])}", file=sys.stderr)
        return exc.returncode or 1
    print_welcome(options.port)
    if options.no_serve:
        return 0
    serve = flask("run", "--host", HOST, "--port", str(options.port))
    os.chdir(REPO_ROOT)
    os.execve(sys.executable, serve, env)


if __name__ == "__main__":
    sys.exit(main())
