"""Legacy Vietnamese encodings: CSV bytes -> text, and cells typed in TCVN3 or VNI -> Unicode NFC.

Before Unicode, district offices typed with the ABC keyboard in the ".VnTime" fonts (TCVN3,
the 8-bit table VN3 of TCVN 5712:1993) or with VNI in the "VNI-Times" fonts (VNI-Windows).
Both fonts say they are Western (ANSI) fonts, so Excel kept each byte as the Windows-1252
character of that byte: a cell that showed "Hợp tác xã" on the clerk's screen holds the text
"Hîp t¸c x·" (TCVN3) or "Hôïp taùc xaõ" (VNI). No maintained Python library converts them,
so the tables are here, from the published tables of the standards:

- TCVN3 (VN3): one byte per letter. The 67 lower-case letters outside ASCII (a with tones at
  B5..B9, ă A8, â A9, đ AE, ê AA, ô AB, ơ AC, ư AD, ...) and 7 capitals without tone
  (Ă Â Ê Ô Ơ Ư Đ at A1..A7). VN3 has no capital letter with a tone: the capital fonts
  (".VnTimeH") draw the lower-case codes as capitals. So a word with two or more ASCII
  letters, all capitals, is set in capitals ("HîP" -> "HỢP"), and so is every word of a text
  with such a word and no lower-case ASCII letter; "X· T©n" stays "Xã Tân".
  Checked against glibc's TCVN5712-1 table in the tests (VN1, whose lower-case half is VN3).
- VNI-Windows: a vowel is its ASCII letter followed by one mark byte (ù ø û õ ï: sắc,
  huyền, hỏi, ngã, nặng; â á à å ã ä: circumflex with those tones; ê é è ú ü ë: breve with
  them); ơ ư đ ỉ ĩ ị ỵ are single bytes (ô ö ñ æ ó ò î); capitals use the capital bytes.

Detection (`to_unicode`), per distinct string, never on a guess alone. A string is converted
only when

1. every character is in Windows-1252 (so any Unicode-only letter: ă ơ ư đ ạ ... or a
   combining mark means the text is Unicode already; so does any CJK, Cyrillic, ...);
2. some whitespace-separated word is *evidence*: as written it is not Vietnamese (a
   character that is no Vietnamese letter such as "¸" "·" "î", a capital inside a word,
   "TrÝ", or letters that make no Vietnamese syllable such as "taùc"), and converted it is
   a Vietnamese syllable of at least two letters;
3. no word is broken once converted (every word with a letter outside ASCII is a valid
   syllable: onset, rhyme, tone on the right vowel, p/t/c/ch only with sắc/nặng, or a name
   of an ethnic-minority language, "Krông", "Đắk", "Kông", which counts neither way); a long
   text may have one broken word in three evidence words (a typo);
4. only one of the two encodings passes, or it has more evidence words; on a tie ("LÖ" is
   "Lệ" in TCVN3 and "LƯ" in VNI) the encoding most other values of the sheet have wins,
   else the text is left;
5. it is at most MAX_CHARS long (longer texts are notes, not names).

So Unicode Vietnamese ("Hòa Bình" stays: TCVN3 would read "Hũa Bỡnh", valid but no
evidence), English, numbers and codes are never touched (tested on every reference name and
vocabulary spelling). A legacy cell whose letters all happen to be Vietnamese Latin-1 letters
("Vò" for "Vũ" alone in a cell) is left as written.

`convert_sheets(sheets)` converts the text cells of `coop.ingest.read.Sheet`s per distinct value
(a `Counter` per column, a dict per converted value; no per-cell detection) and notes on each
sheet what it converted (`sheet_conversions(sheet)`); `legacy_issues(source_file, sheets)`
turns those notes into `FileIssue`s (severity "ignored", reason_code
`legacy_encoding_converted`) for the run report. Rows loaded do not change.

CSV bytes (`decode_csv_bytes`), in this order:

1. a byte-order mark: UTF-8 (EF BB BF), UTF-32 LE/BE, UTF-16 LE (FF FE) / BE (FE FF);
2. a NUL byte in the first 4 KiB: UTF-16 without BOM when the high byte of most
   characters is NUL and the low byte almost never, else rejected (a workbook renamed .csv
   is named as such);
3. valid UTF-8;
4. otherwise an 8-bit file: "almost UTF-8" (most bytes above 127 in valid UTF-8 sequences)
   is rejected as a damaged UTF-8 file; else Windows-1258 (the Vietnamese ANSI code page,
   tone marks as combining characters, composed to NFC) or, when it reads better,
   Windows-1252 with TCVN3/VNI text (converted later per cell). "Reads better" = more words
   that are Vietnamese syllables minus words that are not (ties: Windows-1258). When neither reads as
   Vietnamese (fewer than half of at least 3 words with letters outside ASCII), or the bytes
   are not Windows-1258, the file is rejected (`CsvEncodingError`, Vietnamese reason).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coop.ingest.discover import FileIssue
    from coop.ingest.read import Sheet

__all__ = [
    "TCVN3", "VNI", "LETTERS", "CsvEncodingError", "SheetConversion",
    "to_unicode", "decode_tcvn3", "encode_tcvn3", "decode_vni", "encode_vni", "is_syllable",
    "convert_sheets", "sheet_conversions", "legacy_issues", "decode_csv_bytes",
    "REASON_CODE", "ENCODING_LABELS",
]

REASON_CODE = "legacy_encoding_converted"
MAX_CHARS = 4096  # longer cell texts are not examined
ENCODING_LABELS = {"TCVN3": "TCVN3 (ABC, phông .VnTime)", "VNI": "VNI-Windows (phông VNI-Times)"}

# ----------------------------------------------------------------------------- the letters
_TONE_MARKS = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # none, huyền, sắc, hỏi, ngã, nặng
_BASES = "aăâeêioôơuưy"
_HUYEN, _SAC, _HOI, _NGA, _NANG = _TONE_MARKS[1:]


def _letter(base: str, tone: str) -> str:
    return unicodedata.normalize("NFC", base + tone)


#: The 134 Vietnamese letters outside ASCII: 67 lower case (12 vowels x 6 tones, less the 6
#: plain ASCII vowels, plus đ) and their capitals.
LETTERS: tuple[str, ...] = tuple(
    c for low in [_letter(b, t) for b in _BASES for t in _TONE_MARKS] + ["đ"]
    for c in (low, low.upper()) if not c.isascii())

# letter -> (toneless lower-case base, tone mark) for every Vietnamese letter, ASCII included
_ANALYSIS: dict[str, tuple[str, str]] = {}
for _b in _BASES:
    for _t in _TONE_MARKS:
        _ANALYSIS[_letter(_b, _t)] = (_b, _t)
        _ANALYSIS[_letter(_b, _t).upper()] = (_b, _t)
for _c in "bcdghklmnpqrstvx":
    _ANALYSIS[_c] = (_c, "")
    _ANALYSIS[_c.upper()] = (_c, "")
_ANALYSIS["đ"] = _ANALYSIS["Đ"] = ("đ", "")
_VIETNAMESE_LETTERS = frozenset(_ANALYSIS)

# ----------------------------------------------------------------------------- TCVN3 (VN3)
# TCVN 5712:1993, table VN3: byte -> letter. Per vowel the tones go huyền, hỏi, ngã, sắc, nặng
# in byte order (à B5, ả B6, ã B7, á B8, ạ B9).
_TCVN3_BYTES: dict[int, str] = {
    0xA1: "Ă", 0xA2: "Â", 0xA3: "Ê", 0xA4: "Ô", 0xA5: "Ơ", 0xA6: "Ư", 0xA7: "Đ",
    0xA8: "ă", 0xA9: "â", 0xAA: "ê", 0xAB: "ô", 0xAC: "ơ", 0xAD: "ư", 0xAE: "đ",
    0xB5: "à", 0xB6: "ả", 0xB7: "ã", 0xB8: "á", 0xB9: "ạ",
    0xBB: "ằ", 0xBC: "ẳ", 0xBD: "ẵ", 0xBE: "ắ", 0xC6: "ặ",
    0xC7: "ầ", 0xC8: "ẩ", 0xC9: "ẫ", 0xCA: "ấ", 0xCB: "ậ",
    0xCC: "è", 0xCE: "ẻ", 0xCF: "ẽ", 0xD0: "é", 0xD1: "ẹ",
    0xD2: "ề", 0xD3: "ể", 0xD4: "ễ", 0xD5: "ế", 0xD6: "ệ",
    0xD7: "ì", 0xD8: "ỉ", 0xDC: "ĩ", 0xDD: "í", 0xDE: "ị",
    0xDF: "ò", 0xE1: "ỏ", 0xE2: "õ", 0xE3: "ó", 0xE4: "ọ",
    0xE5: "ồ", 0xE6: "ổ", 0xE7: "ỗ", 0xE8: "ố", 0xE9: "ộ",
    0xEA: "ờ", 0xEB: "ở", 0xEC: "ỡ", 0xED: "ớ", 0xEE: "ợ",
    0xEF: "ù", 0xF1: "ủ", 0xF2: "ũ", 0xF3: "ú", 0xF4: "ụ",
    0xF5: "ừ", 0xF6: "ử", 0xF7: "ữ", 0xF8: "ứ", 0xF9: "ự",
    0xFA: "ỳ", 0xFB: "ỷ", 0xFC: "ỹ", 0xFD: "ý", 0xFE: "ỵ",
}
#: TCVN3 as text read through Windows-1252 (= Latin-1 for A1..FE): legacy char -> letter.
TCVN3: dict[str, str] = {bytes([b]).decode("cp1252"): u for b, u in _TCVN3_BYTES.items()}
_TCVN3_ENCODE: dict[str, str] = {u: t for t, u in TCVN3.items()}
for _t, _u in TCVN3.items():
    if _u.islower() and _u.upper() not in _TCVN3_ENCODE:
        _TCVN3_ENCODE[_u.upper()] = _t  # capitals with a tone: the lower-case code (VN3 has none)
_TCVN3_TRANS = str.maketrans(TCVN3)
_TCVN3_RE = re.compile("[" + re.escape("".join(TCVN3)) + "]")
_TWO_CAPS = re.compile(r"[A-Z]\S*[A-Z]")  # a word with two ASCII capitals
_TCVN3_ENCODE_TRANS = str.maketrans(_TCVN3_ENCODE)

# ----------------------------------------------------------------------------- VNI-Windows
# mark bytes (lower case; capitals are 0x20 lower): tone alone, circumflex + tone, breve + tone
_VNI_TONE = {"": "", "\u0301": "\xf9", "\u0300": "\xf8", "\u0309": "\xfb", "\u0303": "\xf5", "\u0323": "\xef"}
_VNI_CIRC = {"": "\xe2", "\u0301": "\xe1", "\u0300": "\xe0", "\u0309": "\xe5", "\u0303": "\xe3", "\u0323": "\xe4"}
_VNI_BREVE = {"": "\xea", "\u0301": "\xe9", "\u0300": "\xe8", "\u0309": "\xfa", "\u0303": "\xfc", "\u0323": "\xeb"}
_VNI_LOWER: dict[str, str] = {"đ": "\xf1", "ơ": "\xf4", "ư": "\xf6", "ỵ": "\xee",
                              "í": "\xed", "ì": "\xec", "ỉ": "\xe6", "ĩ": "\xf3", "ị": "\xf2"}
for _t, _m in _VNI_TONE.items():
    for _b in "aeouy":
        _VNI_LOWER.setdefault(_letter(_b, _t), _b + _m)
    _VNI_LOWER.setdefault(_letter("ơ", _t), "\xf4" + _m)
    _VNI_LOWER.setdefault(_letter("ư", _t), "\xf6" + _m)
for _t in _TONE_MARKS:
    for _b, _ascii in (("â", "a"), ("ê", "e"), ("ô", "o")):
        _VNI_LOWER[_letter(_b, _t)] = _ascii + _VNI_CIRC[_t]
    _VNI_LOWER[_letter("ă", _t)] = "a" + _VNI_BREVE[_t]
_VNI_LOWER = {u: v for u, v in _VNI_LOWER.items() if not u.isascii()}
_VNI_ENCODE: dict[str, str] = dict(_VNI_LOWER)
for _u, _v in _VNI_LOWER.items():
    _VNI_ENCODE[_u.upper()] = "".join(chr(ord(c) - 0x20) if ord(c) >= 0xE0 else c.upper() for c in _v)
#: VNI-Windows as text read through Windows-1252: legacy sequence (1 or 2 chars) -> letter.
VNI: dict[str, str] = {v: u for u, v in _VNI_ENCODE.items()}
_VNI_RE = re.compile("|".join(re.escape(k) for k in sorted(VNI, key=len, reverse=True)))


def decode_tcvn3(text: str) -> str:
    """TCVN3 text (read as Windows-1252) -> Unicode NFC, no detection. VN3 has no capital
    with a tone, so a word is set in capitals when its ASCII letters are capitals, at least
    two ("HîP" -> "HỢP"), or when the text has such a word and no lower-case ASCII letter
    ("HîP T¸C X·" -> "HỢP TÁC XÃ"); "X· T©n" stays "Xã Tân"."""
    if not _TCVN3_RE.search(text):
        return text
    out = text.translate(_TCVN3_TRANS)
    if not _TWO_CAPS.search(text):
        return out
    words, conv = text.split(" "), out.split(" ")
    caps = [[c for c in w if c.isascii() and c.isalpha()] for w in words]
    all_caps = any(len(c) >= 2 and all(x.isupper() for x in c) for c in caps) and \
        not any(x.islower() for c in caps for x in c)
    for k, w in enumerate(words):
        if _TCVN3_RE.search(w) and (all_caps or (len(caps[k]) >= 2 and all(x.isupper() for x in caps[k]))):
            conv[k] = conv[k].upper()
    return " ".join(conv)


def encode_tcvn3(text: str) -> str:
    """Unicode -> TCVN3 as Windows-1252 text (capitals with a tone take the lower-case code)."""
    return unicodedata.normalize("NFC", text).translate(_TCVN3_ENCODE_TRANS)


def decode_vni(text: str) -> str:
    """VNI-Windows text (read as Windows-1252) -> Unicode, no detection."""
    return _VNI_RE.sub(_vni_letter, text)


def _vni_letter(m: re.Match[str]) -> str:
    return VNI[m.group(0)]


def encode_vni(text: str) -> str:
    """Unicode -> VNI-Windows as Windows-1252 text."""
    return "".join(_VNI_ENCODE.get(c, c) for c in unicodedata.normalize("NFC", text))


# ----------------------------------------------------------------------------- syllables
_ONSETS = ("ngh", "ng", "gh", "gi", "kh", "nh", "ph", "th", "tr", "ch", "qu",
           "b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "")
_RHYMES = frozenset("""
a ai ao au ay am an ang anh ap at ac ach
ăm ăn ăng ăp ăt ăc
âu ây âm ân âng âp ât âc
e eo em en eng ep et ec
ê êu êm ên êng ênh êp êt êc êch
i ia iu im in inh ip it ich iêu iêm iên iêng iêp iêt iêc
o oi om on ong op ot oc oong ooc
oa oai oay oao oam oan oang oanh oap oat oac oach oăm oăn oăng oăt oăc
oe oeo oem oen oet
ô ôi ôm ôn ông ôp ôt ôc
ơ ơi ơm ơn ơp ơt
u ua ui um un ung up ut uc
uân uâng uât uây uê uênh uêch uơ
uy uya uyu uyn uynh uyt uych uyp uyên uyêt
uôi uôm uôn uông uôt uôc
ư ưa ưi ưu ưm ưn ưng ưt ưc
ươi ươu ươm ươn ương ươp ươt ươc
y yêu yêm yên yêt
""".split())
_VOWELS = frozenset(_BASES)
_MODIFIED = frozenset("ăâêôơư")
_CHECKED = ("p", "t", "c", "ch")
_FRONT = ("i", "e", "ê", "y")


def _tone_positions(rhyme: str) -> set[int]:
    """Where a tone may sit in a rhyme (old and new placement both accepted)."""
    vowels = [k for k, c in enumerate(rhyme) if c in _VOWELS]
    modified = [k for k in vowels if rhyme[k] in _MODIFIED]
    if modified:
        return {modified[-1]}                      # ươ -> ơ, uô -> ô, iê -> ê, ưu -> ư
    if vowels[-1] != len(rhyme) - 1:
        return {vowels[-1]}                        # a final consonant: the last vowel (hoàn)
    if len(vowels) == 1:
        return {vowels[0]}
    if len(vowels) == 2:
        return set(vowels) if rhyme in ("oa", "oe", "uy") else {vowels[0]}  # hòa/hoà; mía
    return {vowels[1]}                             # three vowels: the middle one (khoái)


@lru_cache(maxsize=1 << 16)
def is_syllable(word: str, spelling: bool = True) -> bool:
    """True when `word` (letters only, any case) is one Vietnamese syllable: an onset, a
    rhyme, at most one tone, on a vowel that may carry it, p/t/c/ch only with sắc or nặng,
    and (`spelling`) k/gh/ngh only before i e ê y, c/ng/g not before them."""
    base, tone_at, tone = [], -1, ""
    for k, ch in enumerate(word):
        a = _ANALYSIS.get(ch)
        if a is None:
            return False
        base.append(a[0])
        if a[1]:
            if tone:
                return False
            tone, tone_at = a[1], k
    s = "".join(base)
    for onset in _ONSETS:
        if not s.startswith(onset):
            continue
        rhyme = s[len(onset):]
        if not rhyme or rhyme[0] not in _VOWELS:
            continue
        if onset == "gi" and rhyme[0] == "i":
            continue
        ok = rhyme in _RHYMES or (onset == "gi" and "i" + rhyme in _RHYMES) or \
            (onset == "qu" and "u" + rhyme in _RHYMES and rhyme[0] != "u")
        if not ok:
            continue
        if spelling and onset in ("k", "gh", "ngh") and not rhyme.startswith(_FRONT):
            continue
        if spelling and onset in ("c", "ng") and rhyme.startswith(_FRONT):
            continue
        if spelling and onset == "g" and rhyme.startswith(("e", "ê")):
            continue
        if rhyme.endswith(_CHECKED) and tone not in (_SAC, _NANG):
            continue
        if tone and tone_at - len(onset) not in _tone_positions(rhyme):
            continue
        return True
    return False


_RUN = re.compile(r"[^\W\d_]+")
_DIGRAPHS = frozenset(("ng", "nh", "ch", "kh", "ph", "th", "tr", "gh", "gi", "qu"))
_ASCII_CONSONANTS = frozenset("bcdfghjklmnpqrstvwxzBCDFGHJKLMNPQRSTVWXZ")
# punctuation a Unicode text may hold next to its words (Windows-1252 extras, nbsp, °, ±);
# none of them is a TCVN3 letter
_PUNCT = frozenset("\xa0\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2022\u2026\u2030\u2039\u203a°±²³€")


@lru_cache(maxsize=1 << 16)
def _word_kind(run: str) -> str:
    """A letter run with a letter outside ASCII: "syllable" (Vietnamese), "name" (a name of
    an ethnic-minority language written with Vietnamese letters: k/c or g/gh not as Vietnamese
    spells them, "Kông"; one or two consonants before a syllable, "Krông", "Bhăng"; a final
    k/h/l/r/s, "Đắk", "Tẻh"), else "bad" (also: a capital outside
    ASCII inside a word next to a lower-case letter, "TrÝ", "NÊm", which no Unicode text has). A "name" is
    never evidence of a legacy text; it only does not count against one."""
    if any(c.isupper() and not c.isascii() and (run[k - 1].islower() or run[k + 1:k + 2].islower())
           for k, c in enumerate(run) if k):
        return "bad"
    if is_syllable(run):
        return "syllable"
    if is_syllable(run, False):
        return "name"  # k/c, g/gh spelled as in ethnic names: "Kông", "Kon"
    for cut in (0, 1, 2):  # consonants before a consonant: "Krông", "Kmút", "Bhăng"
        rest = run[cut:]
        if not rest or not all(c in _ASCII_CONSONANTS for c in run[:cut + 1]) and cut:
            continue
        if cut and run[:2].lower() not in _DIGRAPHS and is_syllable(rest):
            return "name"
        if len(rest) >= 2 and rest[-1] in "khlrsKHLRS" and _ANALYSIS.get(rest[-2], "b")[0] in _VOWELS \
                and any(is_syllable(rest[:-1] + end) for end in ("", "c", "ng", "n")):
            return "name"  # an ethnic-language final: "Đắk", "Tẻh", "Dêr", "Khăl"
    return "bad"


def _junk(token: str) -> bool:
    """The token holds a character outside ASCII that is no Vietnamese letter and no usual
    punctuation ("¸", "·", "î", "Ö", ...)."""
    return any(not c.isascii() and c not in _VIETNAMESE_LETTERS and c not in _PUNCT for c in token)


def _kinds(token: str) -> list[str]:
    return [_word_kind(r) for r in _RUN.findall(token) if not r.isascii()]


@lru_cache(maxsize=1 << 17)
def _token_score(token: str) -> tuple[int, int, int, int]:
    """(evidence, broken) of one whitespace-separated token read as TCVN3, then as VNI.
    Evidence: the word as written is no Vietnamese (junk characters or a bad word) and decoded
    it is a syllable of two letters or more. Broken: decoded, it still has junk or a bad word."""
    if token.isascii():
        return 0, 0, 0, 0
    orig_bad = None
    out: list[int] = []
    for decode in (decode_tcvn3, decode_vni):
        dec = decode(token)
        ev = bad = 0
        if _junk(dec) or "bad" in _kinds(dec):
            bad = 1
        elif dec != token:
            if orig_bad is None:
                orig_bad = _junk(token) or "bad" in _kinds(token)
            if orig_bad and any(len(r) >= 2 and not r.isascii() and _word_kind(r) == "syllable"
                                for r in _RUN.findall(dec)):
                ev = 1
        out += (ev, bad)
    return out[0], out[1], out[2], out[3]


def _accept(evidence: int, bad: int) -> bool:
    return evidence >= 1 and (bad == 0 or (evidence >= 3 and 3 * bad <= evidence))


@lru_cache(maxsize=1 << 17)
def _candidates(text: str) -> tuple[tuple[str, str, int], ...]:
    """(encoding, converted text, evidence words) for each legacy encoding `text` passes.
    Texts longer than MAX_CHARS (notes, not names) are left as written."""
    if text.isascii() or len(text) > MAX_CHARS:
        return ()
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return ()
    t_ev = t_bad = v_ev = v_bad = 0
    for token in text.split():
        a, b, c, d = _token_score(token)
        t_ev, t_bad, v_ev, v_bad = t_ev + a, t_bad + b, v_ev + c, v_bad + d
    out = []
    if _accept(t_ev, t_bad):
        out.append(("TCVN3", decode_tcvn3(text), t_ev))
    if _accept(v_ev, v_bad):
        out.append(("VNI", decode_vni(text), v_ev))
    return tuple(out)


def to_unicode(text: str, prefer: str | None = None) -> tuple[str, str | None]:
    """(text in Unicode NFC, "TCVN3" | "VNI") when `text` is legacy text, else (text, None).
    When both encodings read it equally well ("LÖ" is "Lệ" in TCVN3 and "LƯ" in VNI) the
    `prefer`red one (the encoding of the rest of the sheet) is taken, else it is left."""
    cands = _candidates(text)
    if not cands:
        return text, None
    if len(cands) == 2:
        (e1, t1, v1), (e2, t2, v2) = cands
        if v1 == v2:
            pick = next((c for c in cands if c[0] == prefer), None)
            return (pick[1], pick[0]) if pick else (text, None)
        return (t1, e1) if v1 > v2 else (t2, e2)
    return cands[0][1], cands[0][0]


# ----------------------------------------------------------------------------- sheets
@dataclass(frozen=True)
class SheetConversion:
    """What `convert_sheets` converted on one sheet, for one encoding."""

    encoding: str        # "TCVN3" | "VNI"
    cells: int           # cells converted
    example: str         # one value as written
    converted: str       # ... and as converted


_NOTES_ATTR = "legacy_conversions"


def sheet_conversions(sheet: Sheet) -> list[SheetConversion]:
    """The conversions `convert_sheets` noted on a sheet ([] when none)."""
    return list(getattr(sheet, _NOTES_ATTR, None) or [])


def convert_sheets(sheets: list[Sheet]) -> list[Sheet]:
    """Convert the TCVN3/VNI text cells of `coop.ingest.read.Sheet`s to Unicode NFC in place, per
    distinct value (a set per column; a `Counter` only for a column with a value to convert),
    note the conversions on each sheet (`sheet_conversions`), return the list. A value both
    encodings read equally well takes the encoding most other values of the sheet have.
    The texts to convert are decided once per sheet (`to_unicode` is a function of the text and
    the sheet's preferred encoding), so a column is counted only when it holds one of them."""
    for sheet in sheets:
        distinct = [set(col) for col in sheet.columns]  # cheaper than counting every column
        # the texts an encoding reads (the others neither vote nor convert)
        texts = {v for d in distinct for v in d if type(v) is str and not v.isascii() and _candidates(v)}
        if not texts:
            continue
        votes = Counter(c[0][0] for c in map(_candidates, texts) if len(c) == 1)
        prefer = votes.most_common(1)[0][0] if votes else None
        converted = {v for v in texts if to_unicode(v, prefer)[1] is not None}
        if not converted:
            continue  # nothing to convert on this sheet (the candidates are memoized)
        cells: Counter[str] = Counter()  # encoding -> cells converted
        examples: dict[str, tuple[str, str]] = {}  # encoding -> (first value as written, as converted)
        for j, col in enumerate(sheet.columns):
            if converted.isdisjoint(distinct[j]):
                continue  # nothing to convert in this column
            mapping: dict[str, str] = {}
            for v, n in Counter(col).items():  # in the column's order: the first example is the first cell
                if v in converted:
                    new, enc = to_unicode(v, prefer)
                    if enc is not None:
                        mapping[v] = new
                        examples.setdefault(enc, (v, new))
                        cells[enc] += n
            if mapping:
                get = mapping.get
                sheet.columns[j] = [get(v, v) if type(v) is str else v for v in col]
        if cells:
            setattr(sheet, _NOTES_ATTR, [SheetConversion(e, cells[e], *examples[e]) for e in sorted(cells)])
    return sheets


def legacy_issues(source_file: str, sheets: Iterable[Sheet]) -> list[FileIssue]:
    """One `FileIssue` (severity "ignored", `legacy_encoding_converted`) per sheet and
    encoding converted by `convert_sheets`."""
    from coop.ingest.discover import file_issue

    out: list[FileIssue] = []
    for s in sheets:
        for c in sheet_conversions(s):
            out.append(file_issue(
                source_file, REASON_CODE,
                f"Văn bản mã {c.encoding} đã được chuyển sang Unicode ({c.cells} ô) ở trang '{s.name}' "
                f"— bảng mã {ENCODING_LABELS[c.encoding]}, ví dụ '{c.example}' thành '{c.converted}'; "
                f"nên lưu lại tệp bằng Unicode",
                sheet=s.name, severity="ignored"))
    return out


# ----------------------------------------------------------------------------- CSV bytes
class CsvEncodingError(ValueError):
    """The CSV file is in no supported encoding; the message is Vietnamese, for the clerk."""


_SUPPORTED = "UTF-8, UTF-16 có BOM, Windows-1258, TCVN3/VNI"
_ADVICE = "mở tệp bằng Excel và lưu lại dạng 'CSV UTF-8 (Comma delimited)'"
_UTF8_SEQ = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}")
_SCORE_CHARS = 512 * 1024
_HIGH_BYTES = bytes(range(0x80, 0x100))


def _line_of(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


def _vn_score(text: str) -> tuple[int, int]:
    """(words with a letter outside ASCII that are Vietnamese syllables, those that are not)."""
    good = bad = 0
    for r in _RUN.findall(text[:_SCORE_CHARS]):
        if not r.isascii():
            if _word_kind(r) != "bad":
                good += 1
            else:
                bad += 1
    return good, bad


def _utf16_without_bom(head: bytes) -> str | None:
    """"utf-16-le"/"utf-16-be" when the bytes look like UTF-16 text without a BOM: the high
    byte of most characters NUL (ASCII and Latin-1 letters), the low byte almost never."""
    head = head[: len(head) // 2 * 2]
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    z_even, z_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if z_odd >= 0.6 and z_even <= 0.02:
        return "utf-16-le"
    if z_even >= 0.6 and z_odd <= 0.02:
        return "utf-16-be"
    return None


def decode_csv_bytes(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a CSV file's bytes; raises `CsvEncodingError` (Vietnamese)."""
    for bom, enc, label in ((b"\xef\xbb\xbf", "utf-8-sig", "UTF-8"),
                            (b"\xff\xfe\x00\x00", "utf-32", "UTF-32"), (b"\x00\x00\xfe\xff", "utf-32", "UTF-32"),
                            (b"\xff\xfe", "utf-16", "UTF-16"), (b"\xfe\xff", "utf-16", "UTF-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc), label
            except UnicodeDecodeError as e:
                raise CsvEncodingError(
                    f"tệp CSV {label} bị hỏng ở byte {e.start} (dòng {_line_of(data, e.start)}); "
                    f"{_ADVICE}") from None
    head = data[:4096]
    if b"\x00" in head:
        if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
            raise CsvEncodingError("tệp là bảng tính Excel/ODS đặt tên đuôi .csv, không phải CSV; "
                                   "đổi lại đúng đuôi (.xlsx, .xls, .ods) hoặc lưu lại dạng CSV UTF-8")
        utf16 = _utf16_without_bom(head)
        if utf16 is not None:
            try:
                text = data.decode(utf16)
            except UnicodeDecodeError:
                text = ""
            controls = sum(1 for c in text[:4096] if c < " " and c not in "\t\r\n")
            if text and controls <= len(text[:4096]) // 100:
                return text, "UTF-16"
        raise CsvEncodingError(
            f"tệp nhị phân, không phải văn bản CSV (bảng mã được nhận: {_SUPPORTED}); {_ADVICE}")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as e:
        utf8_error = e.start
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    in_seqs = sum(len(m.group(0)) for m in _UTF8_SEQ.finditer(data))
    if in_seqs >= 6 and in_seqs >= 0.8 * high:
        raise CsvEncodingError(
            f"tệp CSV UTF-8 bị hỏng: byte {utf8_error} (dòng {_line_of(data, utf8_error)}) không phải "
            f"UTF-8; {_ADVICE}")
    candidates: list[tuple[int, int, int, int, str, str]] = []  # (good - bad, priority, good, bad, text, label)
    bad_byte = utf8_error
    try:
        t = unicodedata.normalize("NFC", data.decode("cp1258"))
        g, b = _vn_score(t)
        candidates.append((g - b, 1, g, b, t, "Windows-1258"))
    except UnicodeDecodeError as e:
        bad_byte = e.start
    t1252: str | None
    try:
        t1252 = data.decode("cp1252")
    except UnicodeDecodeError:
        t1252 = None
    if t1252 is not None:
        lines = [to_unicode(line) for line in t1252[:_SCORE_CHARS].split("\n")]
        if any(enc for _, enc in lines):
            g, b = _vn_score("\n".join(text for text, _ in lines))
            candidates.append((g - b, 0, g, b, t1252, "Windows-1252 (TCVN3/VNI)"))
    if not candidates:
        raise CsvEncodingError(
            f"tệp CSV không ở bảng mã được nhận ({_SUPPORTED}): byte {bad_byte} (dòng "
            f"{_line_of(data, bad_byte)}) không đọc được; {_ADVICE}")
    _, _, g, b, text, label = max(candidates, key=lambda c: (c[0], c[1]))
    if g + b >= 3 and g < b:
        raise CsvEncodingError(
            f"tệp CSV không ở bảng mã được nhận ({_SUPPORTED}): đọc theo {label} thì {b} trong {g + b} "
            f"từ có dấu không phải tiếng Việt (byte đầu tiên không phải UTF-8: {utf8_error}, dòng "
            f"{_line_of(data, utf8_error)}); {_ADVICE}")
    return text, label
