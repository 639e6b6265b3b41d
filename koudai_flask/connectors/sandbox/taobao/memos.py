"""The seller's memo and flag on a sandbox trade (卖家备注, 旗帜), changed as Taobao changes them.

Both ways in share :func:`update_memo`: the TOP method ``taobao.trade.memo.update``
(``methods``) and the seller editing it in the back office (the sandbox's memo page and
``TaobaoSandbox.set_memo``). Each real change moves the trade's ``modified`` on and publishes
``taobao_trade_TradeMemoModified`` (§1.8), whoever made it: TOP does not tell callers apart,
so a consumer meets its own push again and must find it changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from koudai_flask.connectors.sandbox.taobao.state import TopState, invalid
from koudai_flask.connectors.sandbox.taobao.trades import find_trade, trade_content
from koudai_flask.connectors.taobao.client import format_time, parse_time

TOPIC = "taobao_trade_TradeMemoModified"
# The method's doc says "最大长度: 1000个字节" (bytes) [U: in which encoding]; the sandbox
# counts characters, as koudai's own memo does.
MAX_MEMO = 1000
# 0 grey (no flag), 1 red, 2 yellow, 3 green, 4 blue, 5 purple (pink in the older SDK doc).
FLAGS = range(6)


def check_flag(flag: int) -> int:
    if flag not in FLAGS:
        raise invalid(f"flag 的取值范围是 0-5 (got {flag})", "isv.invalid-parameter:flag")
    return flag


def check_memo(memo: str) -> str:
    if len(memo) > MAX_MEMO:
        raise invalid(f"memo 最长 {MAX_MEMO} 个字符", "isv.invalid-parameter:memo")
    return memo


def update_memo(
    state: TopState,
    tid: int,
    *,
    memo: str = "",
    flag: int | None = None,
    reset: bool = False,
    modified: datetime | None = None,
) -> dict[str, Any]:
    """Give trade ``tid`` a memo and flag with ``taobao.trade.memo.update``'s rules.

    ``reset`` clears the memo whatever ``memo`` says; without it an empty ``memo`` leaves the
    memo as it is and a non-empty one replaces it. ``flag`` ``None`` keeps the flag. Values
    are checked before anything changes; the same values again change nothing and publish
    nothing. Otherwise ``modified`` moves to now (at least one second on: TOP times have
    whole seconds, so a "modified since" reader always sees the change) unless given.
    """
    check_memo(memo)
    if flag is not None:
        check_flag(flag)
    with state.lock:
        trade = find_trade(state, tid)
        before = (trade.get("seller_memo", ""), trade.get("seller_flag", 0))
        after = (
            "" if reset else (memo or before[0]),
            before[1] if flag is None else flag,
        )
        if after == before:
            return trade
        trade["seller_memo"], trade["seller_flag"] = after
        if modified is None:
            modified = max(datetime.now(UTC), parse_time(trade["modified"]) + timedelta(seconds=1))
        trade["modified"] = format_time(modified)
        state.publish(TOPIC, trade_content(trade))
        return trade


def memo_of(state: TopState, tid: int) -> tuple[str, int]:
    """The trade's ``(seller_memo, seller_flag)``."""
    with state.lock:
        trade = find_trade(state, tid)
        return trade.get("seller_memo", ""), trade.get("seller_flag", 0)


__all__ = ["FLAGS", "MAX_MEMO", "TOPIC", "check_flag", "check_memo", "memo_of", "update_memo"]
