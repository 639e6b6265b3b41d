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
import time
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


SANDBOX_SETTINGS = {
    "wechatpay": "wechatpay/koudai_wechatpay.json",
    "alipay": "alipay/koudai_alipay.json",
    "kuaidi100": "kuaidi100/koudai_kuaidi100.json",
}


def start_payment_sandboxes(env: dict[str, str], port: int) -> dict[str, str]:
    """Run the payment and Kuaidi100 sandboxes beside the site: demo buyers really pay, and
    shipped parcels travel (a tracking step every few seconds, until signed for).

    Each runs as ``flask koudai sandbox NAME`` on the next ports; they write the settings
    the site then loads, and stop with the site on Ctrl+C (same process group).
    """
    from examples.host_site.app import create_app

    folder = Path(create_app().instance_path) / "koudai-sandbox"
    started: dict[str, str] = {}
    for offset, name in enumerate(SANDBOX_SETTINGS, start=1):
        settings = folder / SANDBOX_SETTINGS[name]
        settings.unlink(missing_ok=True)
        extra = (
            ["--callback-url", f"http://{HOST}:{port}/shop-hooks/kuaidi100/callback"]
            if name == "kuaidi100"
            else []
        )
        subprocess.Popen(
            flask("koudai", "sandbox", name, "--port", str(port + offset), *extra),
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            if settings.exists():
                break
            time.sleep(0.1)
        else:
            print(f"the {name} sandbox did not start; paying online is off", file=sys.stderr)
            continue
        started[name] = f"http://{HOST}:{port + offset}"
    return started


TAOBAO_SETTINGS = "taobao/koudai_taobao.json"


def start_taobao_sandbox(env: dict[str, str], port: int) -> str | None:
    """A Taobao shop beside the site: one item per demo product, linked and bound by outer
    id, so a sale in our shop lowers its stock and a "buy on Taobao" there lands in our back
    office (the site pulls its messages every second)."""
    from examples.host_site.app import create_app

    settings = Path(create_app().instance_path) / "koudai-sandbox" / TAOBAO_SETTINGS
    settings.unlink(missing_ok=True)
    subprocess.Popen(
        flask("koudai", "sandbox", "taobao", "--port", str(port), "--mirror-shop"),
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        if settings.exists():
            break
        time.sleep(0.1)
    else:
        print("the Taobao sandbox did not start; the demo runs without it", file=sys.stderr)
        return None
    print(f"$ flask link-taobao {settings}", flush=True)
    subprocess.run(flask("link-taobao", str(settings)), env=env, cwd=REPO_ROOT, check=True)
    return f"http://{HOST}:{port}/"


def print_welcome(port: int, *, sandboxes: dict[str, str] | None) -> None:
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
    if sandboxes:
        print("Payments, tracking and a Taobao shop (sandboxes on this machine, no money moves):")
        for name, url in sandboxes.items():
            print(f"  {name:<10} {url}")
        if "taobao" in sandboxes:
            print("  The Taobao sandbox's page shows its stock: buy in our shop and watch it drop;")
            print("  buy there and the order appears in the back office within a second or two.")
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
    if options.no_serve:
        print_welcome(options.port, sandboxes=None)
        return 0
    sandboxes = start_payment_sandboxes(env, options.port)
    taobao = start_taobao_sandbox(env, options.port + len(SANDBOX_SETTINGS) + 1)
    if taobao is not None:
        sandboxes["taobao"] = taobao
    print_welcome(options.port, sandboxes=sandboxes)
    env["HOST_SITE_PAYMENT_SANDBOXES"] = "1"
    serve = flask("run", "--host", HOST, "--port", str(options.port))
    os.chdir(REPO_ROOT)
    os.execve(sys.executable, serve, env)


if __name__ == "__main__":
    sys.exit(main())
