"""The carrier table: our carrier codes (Kuaidi100's) and what each channel calls them.

DESIGN.md names carriers by their Kuaidi100 codes everywhere. A marketplace wants its own
code when a shipment is pushed back (Taobao's ``taobao.logistics.offline.send`` takes a TOP
``company_code``, PROTOCOLS §1.6), so the mapping lives here, once.

Evidence for the TOP codes: a captured ``taobao.logistics.companies.get`` response kept in
public code lists ``SF``, ``YTO``, ``ZTO``, ``STO``, ``YUNDA``, ``EMS``, ``POSTB`` (邮政快递包裹),
``HTKY`` (百世快递), ``ZJS``, ``DBKD`` (德邦快递), ``DBL`` (德邦物流) and ``UC`` (优速快递), each
with its numeric id. Codes we could not confirm that way are listed in ``UNVERIFIED_TOP_CODES``:
check them against ``taobao.logistics.companies.get`` before relying on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from koudai_flask.connectors.errors import PermanentFailure


class UnknownCarrier(PermanentFailure):
    """A carrier code that is not in the table (or has no code on the asked channel)."""

    http_status = 422

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message or f"unknown carrier {code!r}; known: {', '.join(CARRIERS)}",
            reason=reason,
            detail=detail,
        )
        self.code = code


@dataclass(frozen=True)
class Carrier:
    """One carrier: its Kuaidi100 code, the names buyers know, its Taobao TOP code."""

    code: str
    name_zh: str
    name_en: str
    top_code: str | None
    # Kuaidi100 answers 顺丰 and 中通 queries only with the receiver's phone (PROTOCOLS §5).
    needs_phone: bool = False


_TABLE = (
    Carrier("shunfeng", "顺丰速运", "SF Express", "SF", needs_phone=True),
    Carrier("yuantong", "圆通速递", "YTO Express", "YTO"),
    Carrier("zhongtong", "中通快递", "ZTO Express", "ZTO", needs_phone=True),
    Carrier("yunda", "韵达快递", "Yunda Express", "YUNDA"),
    Carrier("shentong", "申通快递", "STO Express", "STO"),
    Carrier("ems", "EMS", "EMS", "EMS"),
    # "JD" is the code PROTOCOLS §1.6 lists and third-party TOP code lists repeat, but it is
    # absent from the captured companies.get response: unverified.
    Carrier("jd", "京东物流", "JD Logistics", "JD"),
    Carrier("youzhengguonei", "邮政快递包裹", "China Post Parcel", "POSTB"),
    # 极兔 (J&T): no public TOP source found. "JTSD" is J&T's code at WeChat and Kdniao; we
    # keep it rather than "HTKY" (the old 百世 code, whose network J&T took over in 2021)
    # because a wrong-but-absent code is refused by TOP, whereas HTKY would be accepted and
    # could name the wrong company. Unverified (PROTOCOLS §1.6 marks it [U] too).
    Carrier("jtexpress", "极兔速递", "J&T Express", "JTSD"),
    Carrier("huitongkuaidi", "百世快递", "Best Express", "HTKY"),
    Carrier("zhaijisong", "宅急送", "ZJS Express", "ZJS"),
    Carrier("debangkuaidi", "德邦快递", "Deppon Express", "DBKD"),
    Carrier("debangwuliu", "德邦物流", "Deppon Logistics", "DBL"),
    Carrier("youshuwuliu", "优速快递", "UC Express", "UC"),
)

CARRIERS: Mapping[str, Carrier] = MappingProxyType({carrier.code: carrier for carrier in _TABLE})

# Kuaidi100 codes whose TOP code is our best reading, not confirmed by companies.get.
UNVERIFIED_TOP_CODES = frozenset({"jd", "jtexpress"})


def is_known(code: str) -> bool:
    """Whether ``code`` is a Kuaidi100 carrier code in our table."""
    return code in CARRIERS


def get_carrier(code: str) -> Carrier:
    """The table row of ``code``; raises :class:`UnknownCarrier` for an unknown code."""
    try:
        return CARRIERS[code]
    except KeyError:
        raise UnknownCarrier(code) from None


def resolve_carrier(text: str) -> str:
    """The carrier code of what a spreadsheet calls a carrier: our (Kuaidi100) code, its
    Taobao TOP code, its Chinese or English name, or the start of its Chinese name
    ("顺丰" for 顺丰速运); case and surrounding spaces do not matter. ``UnknownCarrier``
    when nothing or more than one carrier matches ("德邦" is 德邦快递 or 德邦物流)."""
    wanted = text.strip()
    folded = wanted.casefold()
    for carrier in _TABLE:
        names = (carrier.code, carrier.top_code or "", carrier.name_zh, carrier.name_en)
        if folded in (name.casefold() for name in names):
            return carrier.code
    found = [c.code for c in _TABLE if len(wanted) >= 2 and c.name_zh.startswith(wanted)]
    if len(found) == 1:
        return found[0]
    if found:
        raise UnknownCarrier(
            wanted,
            f"carrier {wanted!r} could be {' or '.join(found)}",
            reason="carrier_ambiguous",
            detail={"text": wanted, "names": [CARRIERS[code].name_zh for code in found]},
        )
    raise UnknownCarrier(wanted, reason="carrier_unknown", detail={"text": wanted})


def top_code(code: str) -> str:
    """The Taobao TOP ``company_code`` of a Kuaidi100 carrier code, or raise ``UnknownCarrier``."""
    carrier = get_carrier(code)
    if carrier.top_code is None:
        raise UnknownCarrier(code, f"carrier {code!r} has no Taobao TOP company code")
    return carrier.top_code
