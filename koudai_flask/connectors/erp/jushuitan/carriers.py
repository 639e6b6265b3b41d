"""Jushuitan logistics company codes (``lc_id``) and our carrier codes (Kuaidi100's).

A shipment read back from Jushuitan names its carrier by ``lc_id``; an order pushed with a
waybill names it the same way. The codes below are the ones a Jushuitan account's
"物流(快递)公司及打印模板" list shows for the big express companies, as kept in public code
that mirrors that list [3P]. A merchant can configure codes of their own there, so a code
missing here is refused with :class:`UnknownCarrier` instead of being guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from koudai_flask.connectors.logistics.carriers import CARRIERS, UnknownCarrier

# lc_id → our code; each of our codes appears once, so the mapping also reads backwards.
_LC_IDS = {
    "SF": "shunfeng",
    "YTO": "yuantong",
    "ZTO": "zhongtong",
    "STO": "shentong",
    "YUNDA": "yunda",
    "EMS": "ems",
    "JD": "jd",
    "POSTB": "youzhengguonei",
    "JTSD": "jtexpress",
    "HTKY": "huitongkuaidi",
    "ZJS": "zhaijisong",
    "DBKD": "debangkuaidi",
    "DBL": "debangwuliu",
    "UC": "youshuwuliu",
}
# Codes read back only: "SF.COLLECT" is 顺丰到付 (freight collect), still SF's network.
_ALIASES = {"SF.COLLECT": "shunfeng"}

LC_ID_TO_CARRIER: Mapping[str, str] = MappingProxyType({**_LC_IDS, **_ALIASES})
CARRIER_TO_LC_ID: Mapping[str, str] = MappingProxyType({v: k for k, v in _LC_IDS.items()})


def carrier_for_lc_id(lc_id: str) -> str:
    """Our carrier code for a Jushuitan ``lc_id``; raises ``UnknownCarrier`` if unmapped."""
    code = LC_ID_TO_CARRIER.get(lc_id.strip().upper())
    if code is None:
        known = ", ".join(sorted(LC_ID_TO_CARRIER))
        raise UnknownCarrier(
            lc_id, f"unknown Jushuitan logistics company code {lc_id!r}; known: {known}"
        )
    return code


def lc_id_for_carrier(code: str) -> str:
    """The Jushuitan ``lc_id`` of one of our carrier codes; raises ``UnknownCarrier``."""
    lc_id = CARRIER_TO_LC_ID.get(code)
    if lc_id is None:
        if code in CARRIERS:
            raise UnknownCarrier(code, f"carrier {code!r} has no Jushuitan logistics code")
        raise UnknownCarrier(code)
    return lc_id


__all__ = [
    "CARRIER_TO_LC_ID",
    "LC_ID_TO_CARRIER",
    "UnknownCarrier",
    "carrier_for_lc_id",
    "lc_id_for_carrier",
]
