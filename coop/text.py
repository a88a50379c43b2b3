"""Text cleaning and folding (input contract: forms.md "Values" and "Where files go").

- `clean_text`: Unicode NFC, trimmed, inner whitespace (line breaks, tabs, no-break spaces)
  collapsed to one space.
- `fold`: a comparison key ignoring case and diacritics (incl. đ -> d), so the old/new
  tone-mark placement (Hoà/Hòa, Thuỷ/Thủy) and NFD input compare equal.
- `header_key`: fold + drop a unit in parentheses ("Doanh thu (triệu đồng)" -> "doanh thu").
- `district_key`: fold, drop administrative prefixes, drop spaces and `-` `_` `.`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal

__all__ = ["clean_text", "fold", "header_key", "district_key", "category_key", "unit_key", "UNIT_PREFIXES"]

# Every Unicode whitespace (str.split() without argument) plus zero-width characters.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
# the same characters, found with one C scan: `str.translate` costs ~8 µs on a short non-ASCII
# text even when it has nothing to drop (~0.05 µs for the search)
_HAS_ZERO_WIDTH = re.compile("[" + "".join(map(chr, _ZERO_WIDTH)) + "]")
_PARENS = re.compile(r"\([^()]*\)")
_DISTRICT_PREFIXES = ("thanh pho", "thi xa", "huyen", "tp", "tx")
_PREFIX_RE = re.compile(r"^(?:" + "|".join(re.escape(p) for p in _DISTRICT_PREFIXES) + r")(?=[\s\-_.]|$)[\s\-_.]*")


# The functions below are pure and called on the same few strings again and again (header
# cells, vocabulary spellings, commune names: 77k header_key calls over the sample's 320 files
# for a few hundred distinct texts), so each is memoized. `typed=True`: 1, 1.0 and True are
# equal keys but not the same text, and a ProblemCell (a str subclass) is kept apart from its
# plain text. Bounded, so unique texts (names, codes) at national scale stay bounded in memory.
_MEMO = 1 << 16


@lru_cache(maxsize=_MEMO, typed=True)
def clean_text(s: str) -> str:
    """NFC, trimmed, inner whitespace (incl. line breaks and nbsp) collapsed to one space."""
    s = unicodedata.normalize("NFC", str(s))
    if _HAS_ZERO_WIDTH.search(s):
        s = s.translate(_ZERO_WIDTH)
    return " ".join(s.split())


class _Marks(dict[int, "str | None"]):
    """str.translate table dropping the non-spacing marks (category Mn), filled per code point
    on first sight: one C-level lookup a character instead of a Python call to
    `unicodedata.category`."""

    def __missing__(self, cp: int) -> str | None:
        ch = chr(cp)
        out = None if unicodedata.category(ch) == "Mn" else ch
        self[cp] = out
        return out


_NO_MARKS = _Marks()
#: The combining marks of Vietnamese letters in NFD (grave, acute, circumflex, tilde, breve, hook
#: above, horn, dot below): all Mn.
_VIETNAMESE_MARKS = ("\u0300", "\u0301", "\u0302", "\u0303", "\u0306", "\u0309", "\u031b", "\u0323")


@lru_cache(maxsize=_MEMO, typed=True)
def fold(s: str) -> str:
    """clean_text, lower case, diacritics removed (đ -> d). 'Hoà' and 'Hòa' fold equal."""
    s = clean_text(s).lower()
    if s.isascii():  # NFD leaves ASCII as it is: no mark, no đ
        return s
    s = unicodedata.normalize("NFD", s).replace("đ", "d").replace("Đ", "d")
    # Vietnamese text: every character not ASCII is one of its marks (all Mn): the ASCII ones are
    # the result (a C pass, where `translate` costs ~4 µs on a short non-ASCII text)
    t = s.encode("ascii", "ignore").decode("ascii")
    if len(s) - len(t) == sum(map(s.count, _VIETNAMESE_MARKS)):
        return t
    return s.translate(_NO_MARKS)


@lru_cache(maxsize=_MEMO, typed=True)
def header_key(s: str) -> str:
    """Header matching key: fold, drop units in parentheses, collapse spaces.

    A header that is only a parenthesised text (a column number such as "(1)") keeps it
    without the parentheses, so it does not collapse to an empty key.
    """
    f = fold(s).rstrip(" *:")  # a required-mark '*' or a trailing ':' is no part of the name
    stripped = " ".join((_PARENS.sub(" ", f) if "(" in f else f).split())  # (no '(': nothing to drop)
    if stripped:
        return stripped
    return " ".join(f.replace("(", " ").replace(")", " ").split())


def district_key(s: str) -> str:
    """District folder key: fold, drop 'huyện'/'thành phố'/'tp'/'thị xã' prefixes, drop
    spaces, '-', '_', '.'. 'Huyen Lac Son', 'lac-son', 'Lạc Sơn' -> 'lacson'."""
    f = fold(s)
    # folder names use '-' or '_' as word separators: 'thanh-pho-hoa-binh'
    spaced = " ".join(re.sub(r"[\-_.]+", " ", f).split())
    spaced = _PREFIX_RE.sub("", spaced, count=1)
    return re.sub(r"[\s\-_.]+", "", spaced)


# Administrative prefixes of folder and cell names, folded and without spaces, with the level
# they name. Longest first, so "thanhpho" is tried before "tp".
UNIT_PREFIXES: tuple[tuple[str, Literal["district", "commune"]], ...] = (
    ("thanhpho", "district"), ("thixa", "district"), ("huyen", "district"), ("quan", "district"),
    ("tp", "district"), ("tx", "district"),
    ("thitran", "commune"), ("dackhu", "commune"), ("phuong", "commune"), ("xa", "commune"),
    ("tt", "commune"),
)


def unit_key(s: str) -> str:
    """Unit name key, prefix kept: fold, then only letters and digits ('Xã Lạc Sơn' ->
    'xalacson', 'xa-lac-son' -> 'xalacson'). Prefix handling is the caller's (see
    `coop.reference.Reference.find_unit`), since a name may itself start like a prefix
    ('Quan Hóa', 'Phương Trung')."""
    return re.sub(r"[^0-9a-z]+", "", fold(s))


def category_key(s: str) -> str:
    """Category matching key: fold, no spaces around '-', ',', '/' ('TM - DV' == 'tm-dv')."""
    f = fold(s).replace("–", "-").replace("—", "-")
    return re.sub(r"\s*([\-,/])\s*", r"\1", f)
