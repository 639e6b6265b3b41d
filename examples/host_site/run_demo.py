"""Set up and serve the demo: ``python -m examples.host_site.run_demo [--no-serve]``.

Runs, in this process, the commands a merchant would type, with ``FLASK_APP`` pointed at
this site: create the site's tables, koudai's schema, the demo catalog, the demo accounts
and a month of sample sales. Every step can run again, so starting the demo twice keeps
the data of the first run.

The site and its sandboxes run as child processes of this one, which stops them all when
the site stops, on Ctrl+C or on SIGTERM or SIGHUP; so a demo that ended leaves no sandbox
holding its port. A port that is already taken stops the demo before anything starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click

from examples.host_site.commands import DEMO_ACCOUNTS
from examples.host_site.walkthroughs import (
    print_after_sales_walkthrough,
    print_campaign_walkthrough,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FLASK_APP = "examples.host_site.app"
HOST = "127.0.0.1"

SETUP_STEPS: list[list[str]] = [
    ["init-db"],
    ["koudai", "db", "upgrade"],
    ["koudai", "demo", "seed"],
    ["seed-users"],
    ["seed-crm"],
    ["seed-sales"],
]


# Every process started beside the site, stopped with it (stop_children).
CHILDREN: list[subprocess.Popen[bytes]] = []


def start_child(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    CHILDREN.append(child)
    return child


def stop_children(grace: float = 5.0) -> None:
    """Ask every child to stop, then kill the ones still running after ``grace`` seconds."""
    for child in CHILDREN:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace
    for child in CHILDREN:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def demo_ports(port: int) -> list[int]:
    """The site's port and the sandboxes' after it."""
    return [port + offset for offset in range(len(SANDBOX_SETTINGS) + 3)]


def busy_ports(ports: Sequence[int]) -> list[int]:
    taken = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the servers bind: a port whose last connection lingers in TIME_WAIT is
            # free for them, and only a listening socket makes it busy.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError:
                taken.append(port)
    return taken


def flask(*args: str) -> list[str]:
    """The command line of ``flask ARGS`` with this interpreter (the project's venv)."""
    return [sys.executable, "-m", "flask", *args]


def set_up(env: dict[str, str]) -> None:
    """Run each step as ``flask STEP`` would, in this process with ``env`` as its environment:
    one interpreter start and one import of the site for the five steps instead of five.
    A step that fails raises ``CalledProcessError`` with its exit status, as ``flask`` would."""
    from flask.cli import cli

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        for step in SETUP_STEPS:
            print(f"$ flask {' '.join(step)}", flush=True)
            status = _run_flask(cli, step)
            if status:
                raise subprocess.CalledProcessError(status, flask(*step))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run_flask(cli: click.Command, step: list[str]) -> int:
    """The exit status of ``flask STEP`` run through the Flask CLI's own entry point."""
    try:
        result = cli.main(args=list(step), prog_name="flask", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return result if isinstance(result, int) else 0


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
        start_child(flask("koudai", "sandbox", name, "--port", str(port + offset), *extra), env)
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
    start_child(flask("koudai", "sandbox", "taobao", "--port", str(port), "--mirror-shop"), env)
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


WECHAT_SETTINGS = "wechat/koudai_wechat.json"
ONBOARDING_SHEET = "onboarding-keys.txt"


def start_wechat_sandbox(env: dict[str, str], port: int) -> str | None:
    """A WeChat Official Account API beside the site, for the set-up wizard's WeChat step.

    It runs as this module with ``--wechat-sandbox PORT`` (a child process, stopped with the
    site on Ctrl+C) and writes its AppID and AppSecret to the instance folder.
    """
    settings = _sandbox_folder() / WECHAT_SETTINGS
    settings.unlink(missing_ok=True)
    start_child(
        [sys.executable, "-m", "examples.host_site.run_demo", "--wechat-sandbox", str(port)], env
    )
    for _ in range(100):
        if settings.exists():
            return f"http://{HOST}:{port}"
        time.sleep(0.1)
    print(
        "the WeChat sandbox did not start; the wizard's WeChat step can be skipped", file=sys.stderr
    )
    return None


def _sandbox_folder() -> Path:
    from examples.host_site.app import create_app

    return Path(create_app().instance_path) / "koudai-sandbox"


def serve_wechat_sandbox(port: int) -> None:
    """The Official Account API stand-in; its AppID and AppSecret are kept across restarts."""
    import json
    import secrets

    from examples.host_site.demo_crm import (
        DEMO_STOCK_TEMPLATE_ID,
        DEMO_TEMPLATE_ID,
        demo_openids,
    )
    from koudai_flask.connectors.sandbox.cli import serve_until_stopped
    from koudai_flask.connectors.sandbox.wechat import WechatSandbox

    folder = _sandbox_folder() / "wechat"
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / "sandbox_keys.json"
    if kept.exists():
        appid_secret = json.loads(kept.read_text(encoding="utf-8"))
    else:
        appid_secret = {"appid": "wx" + secrets.token_hex(8), "secret": secrets.token_hex(16)}
        _write_private(kept, json.dumps(appid_secret))
    # It accepts the demo's template and knows the demo customers' openids as followers.
    sandbox = WechatSandbox(
        port=port,
        template_ids={DEMO_TEMPLATE_ID, DEMO_STOCK_TEMPLATE_ID},
        known_openids=demo_openids(),
        **appid_secret,
    )
    _write_private(folder / "koudai_wechat.json", json.dumps(sandbox.settings_for_client()))
    serve_until_stopped(sandbox, "WeChat sandbox")


def _write_private(path: Path, text: str) -> None:
    # Readable by this user only, from the start: the files hold test secrets.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_onboarding_sheet() -> Path | None:
    """One text file with every sandbox key the set-up wizard asks for, ready to paste."""
    import json

    folder = _sandbox_folder()
    sections: list[str] = []
    fields = {
        "wechat": (WECHAT_SETTINGS, ("appid", "secret", "api_url")),
        "wechatpay": (
            SANDBOX_SETTINGS["wechatpay"],
            ("mchid", "appid", "apiv3_key", "merchant_serial_no", "merchant_private_key"),
        ),
        "alipay": (
            SANDBOX_SETTINGS["alipay"],
            ("app_id", "app_private_key", "alipay_public_key", "seller_id"),
        ),
        "taobao": (TAOBAO_SETTINGS, ("app_key", "app_secret", "gateway_url", "oauth_base")),
    }
    for name, (relative, keys) in fields.items():
        path = folder / relative
        if not path.exists():
            continue
        settings = json.loads(path.read_text(encoding="utf-8"))
        lines = [f"== {name} =="]
        lines += [f"{key}:\n{settings[key]}".rstrip() for key in keys if settings.get(key)]
        if name == "wechatpay":
            for key_id, pem in settings["platform_public_keys"].items():
                lines += [f"platform_key_id:\n{key_id}", f"platform_public_key:\n{pem}".rstrip()]
        if "gateway_url" in settings and name in ("wechatpay", "alipay"):
            lines.append(f"gateway_url:\n{settings['gateway_url']}")
        sections.append("\n\n".join(lines))
    if not sections:
        return None
    sheet = folder / ONBOARDING_SHEET
    _write_private(sheet, "\n\n\n".join(sections) + "\n")
    return sheet


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
        print("Payments, tracking, WeChat and a Taobao shop (sandboxes here, no money moves):")
        for name, url in sandboxes.items():
            print(f"  {name:<10} {url}")
        if "taobao" in sandboxes:
            print("  The Taobao sandbox's page shows its stock: buy in our shop and watch it drop;")
            print("  buy there and the order appears in the back office within a second or two;")
            print("  its 'Ask refund' and 'Agree' buttons play a Taobao refund the order follows.")
            print_after_sales_walkthrough(base)
        if "wechat" in sandboxes:
            print_campaign_walkthrough(base, sandboxes["wechat"])
        sheet = write_onboarding_sheet()
        if sheet is not None:
            print("Set-up wizard (log in as the owner), run against these sandboxes:")
            print(f"  {base}/shop-admin/onboarding")
            print(f"  The keys to paste in each step are in {sheet}")
    print(flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 5000))
    parser.add_argument("--no-serve", action="store_true", help="set up, print, and stop")
    parser.add_argument("--wechat-sandbox", type=int, metavar="PORT", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.wechat_sandbox:
        serve_wechat_sandbox(options.wechat_sandbox)
        return 0
    env = {**os.environ, "FLASK_APP": FLASK_APP}
    taken = [] if options.no_serve else busy_ports(demo_ports(options.port))
    if taken:
        listed = ("port " if len(taken) == 1 else "ports ") + ", ".join(map(str, taken))
        print(
            f"{listed} already in use (another demo still running?): stop it, or pick other "
            f"ports with `make demo PORT={options.port + 100}`",
            file=sys.stderr,
        )
        return 2
    try:
        set_up(env)
    except subprocess.CalledProcessError as exc:
        print(f"demo set-up failed at: flask {' '.join(exc.cmd[3:])}", file=sys.stderr)
        return exc.returncode or 1
    if options.no_serve:
        print_welcome(options.port, sandboxes=None)
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        sandboxes = start_payment_sandboxes(env, options.port)
        taobao = start_taobao_sandbox(env, options.port + len(SANDBOX_SETTINGS) + 1)
        if taobao is not None:
            sandboxes["taobao"] = taobao
        wechat = start_wechat_sandbox(env, options.port + len(SANDBOX_SETTINGS) + 2)
        if wechat is not None:
            sandboxes["wechat"] = wechat
        print_welcome(options.port, sandboxes=sandboxes)
        env["HOST_SITE_PAYMENT_SANDBOXES"] = "1"
        return serve(flask("run", "--host", HOST, "--port", str(options.port)), env)
    except KeyboardInterrupt:
        return 0
    finally:
        stop_children()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(command: list[str], env: dict[str, str]) -> int:
    """Run the site until it stops (its exit status) or this process is told to stop."""
    site = subprocess.Popen(command, env=env, cwd=REPO_ROOT)
    CHILDREN.insert(0, site)
    return site.wait()


if __name__ == "__main__":
    sys.exit(main())
