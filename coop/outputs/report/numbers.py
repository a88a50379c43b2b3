"""Numbers as a Vietnamese official writes them: `.` groups thousands, `,` is the decimal mark."""

from __future__ import annotations

import math


def vn_number(value: float | int | None, decimals: int = 0, *, trim: bool = False, missing: str = "–") -> str:
    """1234567.891 -> "1.234.567,89" (decimals=2). `trim` drops trailing decimal zeros."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    text = f"{value:,.{decimals}f}"  # 1,234,567.89
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    if text.startswith("-") and text.strip("-0.,") == "":  # "-0", "-0.0": no negative zero
        text = text[1:]
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def money_phrase(mvnd: float) -> str:
    """Million VND as an official writes it: 3240 -> "3,24 tỷ đồng", 401.2 -> "401 triệu đồng",
    56.5 -> "56,5 triệu đồng"."""
    a = abs(mvnd)
    if a >= 1000:
        return f"{vn_number(a / 1000, 2, trim=True)} tỷ đồng"
    if a >= 100:
        return f"{vn_number(a, 0)} triệu đồng"
    return f"{vn_number(a, 1, trim=True)} triệu đồng"


def people_phrase(n: int | None) -> str:
    """12700 -> "12,7 nghìn"; 3012 -> "3.012"."""
    if n is None:
        return "–"
    if n >= 10000:
        return f"{vn_number(n / 1000, 1, trim=True)} nghìn"
    return vn_number(n, 0)


def target_text(lo: float | None, hi: float | None, decimals: int = 0) -> str:
    """A plan target as the plan writes it: "6 - 8", "từ 65", "500"."""
    if lo is None and hi is None:
        return "–"
    if lo is not None and hi is not None:
        if lo == hi:
            return vn_number(lo, decimals, trim=True)
        return f"{vn_number(lo, decimals, trim=True)} - {vn_number(hi, decimals, trim=True)}"
    if lo is not None:
        return f"từ {vn_number(lo, decimals, trim=True)}"
    return f"đến {vn_number(hi, decimals, trim=True)}"


def attainment_pct(actual: float | None, target_min: float | None, code: str = "") -> float | None:
    """Actual as % of the target's minimum; None for growth-rate targets (a % of a % says
    nothing: their status tells met / not met, and the plan chart draws them on their own axis)."""
    if actual is None or target_min is None or target_min <= 0 or code.endswith("_pct"):
        return None
    return actual / target_min * 100
