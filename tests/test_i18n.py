"""Every shop string has its Chinese translation, and the compiled catalog is current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).parent.parent
TRANSLATIONS = ROOT / "koudai_flask" / "translations"


def extracted_ids(tmp_path: Path) -> set[str]:
    pot = tmp_path / "koudai.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_k",
            "-k",
            "_l",
            "-k",
            "_kn:1,2",
            "-k",
            "lazy_gettext",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as fh:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}


def test_every_string_in_code_and_templates_has_a_chinese_translation(tmp_path):
    with (TRANSLATIONS / "zh" / "LC_MESSAGES" / "koudai.po").open("rb") as fh:
        catalog = read_po(fh)
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and (m.string if isinstance(m.string, str) else all(m.string))
    }
    missing = sorted(extracted_ids(tmp_path) - translated)
    assert missing == []


def test_the_catalog_translates_each_message_once():
    """Two entries for one message: the compiled catalog keeps one, silently (a translation
    added a second time, in other words, would never show)."""
    text = (TRANSLATIONS / "zh" / "LC_MESSAGES" / "koudai.po").read_text(encoding="utf-8")
    ids = re.findall(r'^msgid "(.+)"$', text, re.M)
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


def test_the_compiled_catalog_matches_the_po_file():
    folder = TRANSLATIONS / "zh" / "LC_MESSAGES"

    def table(catalog: object) -> dict[str, tuple[str, ...]]:
        return {
            str(m.id if isinstance(m.id, str) else tuple(m.id)): tuple(
                [m.string] if isinstance(m.string, str) else m.string
            )
            for m in catalog  # type: ignore[attr-defined]
            if m.id
        }

    with (folder / "koudai.po").open("rb") as fh:
        po = table(read_po(fh))
    with (folder / "koudai.mo").open("rb") as fh:
        mo = table(read_mo(fh))
    assert mo == po


@pytest.mark.parametrize(
    ("language", "transition", "short", "missing"),
    [
        (
            "zh-CN",
            "订单 KD1 当前为「已发货」，不能取消。",
            "SHIRT-W 库存不足：需要 3 件，可用 1 件。",
            "没有编码为 NOPE 的 SKU。",
        ),
        (
            "en",
            "Order KD1 is Shipped: it cannot be cancelled.",
            "Not enough stock of SHIRT-W: 3 asked for, 1 available.",
            "There is no SKU with the code NOPE.",
        ),
    ],
)
def test_a_refusal_is_said_in_the_reader_s_language(
    make_app, database_url, language, transition, short, missing
):
    from koudai_flask.blueprints.refusals import refusal_text
    from koudai_flask.errors import InvalidTransition, NotFound, OutOfStock, ValidationError
    from koudai_flask.extension import get_state
    from koudai_flask.services import inventory

    app = make_app(database_url)
    with app.test_request_context(headers={"Accept-Language": language}):
        assert refusal_text(InvalidTransition("KD1", "shipped", "cancel")) == transition
        assert refusal_text(OutOfStock("SHIRT-W", 3, 1)) == short
        with pytest.raises(NotFound) as unknown:
            inventory.get_sku(get_state().session, "NOPE")
        assert refusal_text(unknown.value) == missing
        other = ValidationError("name is required")  # no reason: the service's words
        assert refusal_text(other) == "name is required"
