"""Legacy encodings (coop/ingest/legacy_text.py): CSV bytes in UTF-16 / Windows-1258, cells in TCVN3
(ABC, .VnTime) and VNI-Windows converted to Unicode NFC.

Expected letters come from the standards' tables (TCVN 5712:1993 VN3, cross-checked against
glibc's TCVN5712-1 converter when `iconv` has it; VNI-Windows as published by the VNI fonts:
vowel + mark byte), never from the converter's own output."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import tomllib
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coop.ingest import legacy_text as lt
from coop.ingest.legacy_text import (
    LETTERS, TCVN3, VNI, CsvEncodingError, convert_sheets, decode_csv_bytes, decode_tcvn3, decode_vni,
    encode_tcvn3, encode_vni, legacy_issues, sheet_conversions, to_unicode,
)
from coop.ingest.read import ReadError, read_sheets
from hostile_fixtures import cp1258
from reader_fixtures import G, HTX_HEAD, htx_row, ingest, issues, rejected, write_xlsx

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "schemas" / "reference"
NFC = lambda s: unicodedata.normalize("NFC", s)  # noqa: E731

LOWER = [c for c in LETTERS if c.islower()]
CAPITAL_BASES = ["Ă", "Â", "Ê", "Ô", "Ơ", "Ư", "Đ"]


# --------------------------------------------------------------------------- the tables
def test_the_134_letters():
    assert len(LETTERS) == 134 and len(set(LETTERS)) == 134
    assert len(LOWER) == 67 and "đ" in LOWER and "Đ" in LETTERS
    assert all(not c.isascii() and unicodedata.is_normalized("NFC", c) for c in LETTERS)


def test_tcvn3_table_is_vn3():
    # VN3: 67 lower-case letters and the 7 capitals without tone, one Windows-1252 byte each,
    # in A1..FE, none in the C1 range Excel would turn into punctuation
    assert set(TCVN3.values()) == set(LOWER) | set(CAPITAL_BASES)
    assert len(TCVN3) == 74
    for legacy in TCVN3:
        (b,) = legacy.encode("cp1252")
        assert 0xA1 <= b <= 0xFE
    # spot checks from the published table
    assert (TCVN3["¸"], TCVN3["µ"], TCVN3["¶"], TCVN3["·"], TCVN3["¹"]) == ("á", "à", "ả", "ã", "ạ")
    assert (TCVN3["\xad"], TCVN3["®"], TCVN3["§"], TCVN3["î"]) == ("ư", "đ", "Đ", "ợ")


@pytest.mark.skipif(shutil.which("iconv") is None, reason="no iconv")
def test_tcvn3_table_matches_glibc_tcvn5712():
    raw = bytes(b for legacy in TCVN3 for b in legacy.encode("cp1252"))
    got = subprocess.run(["iconv", "-f", "TCVN5712-1", "-t", "UTF-8"], input=raw, capture_output=True)
    if got.returncode != 0:
        pytest.skip("iconv has no TCVN5712-1")
    assert list(NFC(got.stdout.decode("utf-8"))) == list(TCVN3.values())


def test_tcvn3_round_trip_every_letter():
    for c in LOWER + CAPITAL_BASES:
        enc = encode_tcvn3(c)
        assert len(enc) == 1 and enc in TCVN3, c
        assert decode_tcvn3(enc) == c
        assert decode_tcvn3(encode_tcvn3("t" + c + "n")) == "t" + c + "n"
    for c in LETTERS:
        if c.isupper() and c not in CAPITAL_BASES:
            # VN3 has no capital with a tone: the lower-case code, set in capitals in a capital word
            assert encode_tcvn3(c) == encode_tcvn3(c.lower())
            assert decode_tcvn3(encode_tcvn3("X" + c + "Y")) == "X" + c + "Y", c


def test_vni_round_trip_every_letter():
    assert set(VNI.values()) == set(LETTERS) and len(VNI) == 134
    for c in LETTERS:
        enc = encode_vni(c)
        assert 1 <= len(enc) <= 2 and enc.encode("cp1252")
        assert decode_vni(enc) == c, c
        assert decode_vni(encode_vni("t" + c + "n")) == "t" + c + "n"
    # the mark bytes of the VNI-Windows table
    assert encode_vni("á à ả ã ạ") == "aù aø aû aõ aï"
    assert encode_vni("ấ ầ ẩ ẫ ậ â ắ ằ ẳ ẵ ặ ă") == "aá aà aå aã aä aâ aé aè aú aü aë aê"
    assert encode_vni("ơ ư đ Đ ỉ ĩ ị ỵ Ợ") == "ô ö ñ Ñ æ ó ò î ÔÏ"


def test_examples_of_the_brief():
    assert encode_tcvn3("Hợp tác xã") == "Hîp t¸c x·"
    assert encode_vni("Hợp tác xã") == "Hôïp taùc xaõ"
    assert to_unicode("Hîp t¸c x·") == ("Hợp tác xã", "TCVN3")
    assert to_unicode("Hôïp taùc xaõ") == ("Hợp tác xã", "VNI")
    assert to_unicode("HÔÏP TAÙC XAÕ") == ("HỢP TÁC XÃ", "VNI")
    assert to_unicode("HîP T¸C X·") == ("HỢP TÁC XÃ", "TCVN3")
    assert to_unicode("X· T©n LËp") == ("Xã Tân Lập", "TCVN3")
    assert to_unicode("HTX N«ng nghiÖp Tr­êng S¬n") == ("HTX Nông nghiệp Trường Sơn", "TCVN3")
    assert to_unicode("Vò V¨n Tó, 12/3 §éi 5") == ("Vũ Văn Tú, 12/3 Đội 5", "TCVN3")
    assert to_unicode("HTX Dòch vuï noâng nghieäp Ñoàng Taâm") == ("HTX Dịch vụ nông nghiệp Đồng Tâm", "VNI")
    # "LÖ" is "Lệ" in TCVN3 and "LƯ" in VNI: the sheet's encoding decides, else left
    assert to_unicode("LÖ Ninh") == ("LÖ Ninh", None)
    assert to_unicode("LÖ Ninh", prefer="TCVN3") == ("Lệ Ninh", "TCVN3")


# --------------------------------------------------------------------------- no false positives
def _reference_strings() -> set[str]:
    out: set[str] = set()
    for name in ("communes", "former_communes", "districts", "provinces"):
        with (REF / f"{name}.csv").open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                out.update(v for v in row.values() if v)

    def walk(x):
        if isinstance(x, str):
            out.add(x)
        elif isinstance(x, dict):
            out.update(k for k in x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(tomllib.loads((REF / "vocabularies.toml").read_text(encoding="utf-8")))
    from schemas.forms import FORMS  # every header spelling a clerk may write

    out.update(a for spec in FORMS.values() for c in spec.columns for a in c.aliases)
    return out


@pytest.fixture(scope="module")
def reference_strings() -> set[str]:
    return _reference_strings()


OTHER_TEXT = [
    "Hợp tác xã", "HỢP TÁC XÃ", "Tên HTX", "Xã", "Khá", "Tốt", "Vũ", "Bà Tâm", "Lê Thị Hà", "Ông Bình",
    "Công ty ABC®", "Tên HTX ©2020", "½ ha", "café", "Café Phố", "Hôtel de Ville", "Peña", "Ðinh Văn A",
    "Cooperative", "OCOP 3★", "5400100001", "12/QĐ-UBND", "1.234,5", "“Hợp tác xã” – 2020…", "NĂM 2020",
    "Số thành viên (người)", "Doanh thu (triệu đồng)", "Krông Nô", "Kon Plông", "Ea H'Leo", "M'Drắk",
]


def test_no_false_positive_on_reference_names_vocabularies_and_headers(reference_strings):
    assert len(reference_strings) > 20000
    fired = []
    for s in sorted(reference_strings | set(OTHER_TEXT)):
        for form in {s, NFC(s).upper(), NFC(s).lower(), unicodedata.normalize("NFD", s)}:
            if to_unicode(form)[1] is not None:
                fired.append(form)
    assert fired == []


def test_reference_names_written_in_tcvn3_or_vni_come_back(reference_strings):
    """The same names typed in the legacy fonts: nearly all recovered, none turned into another
    word. The rest are left as written: ethnic-minority names that are no Vietnamese syllable
    ("Kon Pl«ng") or words whose legacy spelling is itself a Unicode word ("Phó" for "Phú")."""
    for encoding, encode in (("TCVN3", encode_tcvn3), ("VNI", encode_vni)):
        ok = left = wrong = 0
        for s in reference_strings:
            legacy = encode(s)
            if legacy == s:
                continue
            got, enc = to_unicode(legacy, prefer=encoding)
            want = NFC(s)
            if encoding == "TCVN3":  # VN3 keeps no capital with a tone
                got, want = got.lower(), want.lower()
            if enc is None:
                left += 1
            elif got == want and enc == encoding:
                ok += 1
            else:
                wrong += 1
        total = ok + left + wrong
        assert total > 15000
        assert ok >= 0.95 * total, (encoding, ok, left, wrong)
        assert wrong <= total // 1000, (encoding, ok, left, wrong)


# --------------------------------------------------------------------------- CSV bytes
CSV_TEXT = (
    "DANH SÁCH HỢP TÁC XÃ NĂM 2020;;;;;;;\r\n"
    "Mã số HTX;Tên HTX;Xã;Ngày thành lập;Lĩnh vực;Tình trạng;Số thành viên;Doanh thu\r\n"
    "5400100001;HTX Nông nghiệp Tân Lập;Xã Tân Lập;01/02/2015;Nông nghiệp;Đang hoạt động;20;1.234,5\r\n"
    "5400100002;Hợp tác xã Dịch vụ Đồng Tâm;Xã Ân Nghĩa;2016-03-04;Dịch vụ;Hoạt động;12;300\r\n"
    "5400100003;HTX Thủy sản Hồ Hòa Bình;Thị trấn Vụ Bản;05/06/2018;Nông nghiệp;Tạm ngừng hoạt động;8;\r\n"
)


def test_cp1258_writer_really_uses_combining_tones():
    data = cp1258(CSV_TEXT)
    assert b"\xd2" in data or b"\xf2" in data  # a combining hook or dot below
    assert NFC(data.decode("cp1258")) == CSV_TEXT


@pytest.mark.parametrize("encode,label", [
    (lambda t: t.encode("utf-8"), "UTF-8"),
    (lambda t: b"\xef\xbb\xbf" + t.encode("utf-8"), "UTF-8"),
    (lambda t: t.encode("utf-16"), "UTF-16"),                       # BOM, machine order (LE)
    (lambda t: b"\xff\xfe" + t.encode("utf-16-le"), "UTF-16"),
    (lambda t: b"\xfe\xff" + t.encode("utf-16-be"), "UTF-16"),
    (lambda t: t.encode("utf-16-le"), "UTF-16"),                    # no BOM: every other byte NUL
    (cp1258, "Windows-1258"),
])
def test_csv_bytes_decoded(encode, label):
    assert decode_csv_bytes(encode(CSV_TEXT)) == (CSV_TEXT, label)


def _csv_files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "raw" / "2020" / "lac-son"
    folder.mkdir(parents=True)
    files = {
        "utf8": CSV_TEXT.encode("utf-8"),
        "utf16le": b"\xff\xfe" + CSV_TEXT.encode("utf-16-le"),
        "utf16be": b"\xfe\xff" + CSV_TEXT.encode("utf-16-be"),
        "cp1258": cp1258(CSV_TEXT),
    }
    out = {}
    for name, data in files.items():
        p = folder / f"htx-{name}.csv"
        p.write_bytes(data)
        out[name] = p
    return out


def test_csv_utf16_and_cp1258_read_to_the_same_rows(tmp_path):
    files = _csv_files(tmp_path)
    (base,) = read_sheets(files["utf8"])
    results = {k: ingest(p) for k, p in files.items()}
    def rows(r):  # the sheet of a CSV is named after the file
        return r.forms["HTX"].drop("source_file", "sheet", strict=False).to_dicts()

    want = rows(results["utf8"])
    assert [r["name"] for r in want] == ["HTX Nông nghiệp Tân Lập", "Hợp tác xã Dịch vụ Đồng Tâm",
                                         "HTX Thủy sản Hồ Hòa Bình"]
    assert rejected(results["utf8"]) == [] and issues(results["utf8"]) == []
    for name, p in files.items():
        (s,) = read_sheets(p)
        assert (s.row_numbers, s.columns, s.kinds) == (base.row_numbers, base.columns, base.kinds), name
        assert sheet_conversions(s) == []
        r = results[name]
        assert issues(r) == [] and rejected(r) == [], name
        assert rows(r) == want, name


def test_csv_utf16_and_cp1258_validate_like_utf8(tmp_path):
    from coop.cli import app

    got = {}
    for name, p in _csv_files(tmp_path).items():  # one at a time: one folder's files are resubmissions
        result = CliRunner().invoke(app, ["validate", str(p), "--format", "json"])
        assert result.exit_code == 0, result.output
        (f,) = json.loads(result.stdout)["files"]
        got[p.stem] = (f["ok"], f["rows_accepted"], f["rows_rejected"], f["problems"],
                       [(x["form"], x["header_row"], x["rows_accepted"]) for x in f["forms"]])
    assert got["htx-utf8"] == (True, 3, 0, [], [("HTX", 2, 3)])
    for name in ("utf16le", "utf16be", "cp1258"):
        assert got[f"htx-{name}"] == got["htx-utf8"], name


@pytest.mark.parametrize("data,words", [
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(200), ["bảng tính Excel", ".csv"]),
    (bytes(range(256)) * 4, ["tệp nhị phân"]),
    ("Mã số HTX;Tên HTX\n1;Hợp tác xã Đông Hòa\n2;Hợp tác xã Tân".encode() + b"\xff\n", ["UTF-8 bị hỏng", "dòng 3"]),
    ("Имя;Адрес\nКооператив Север;Москва\nИванов;Тверь\n".encode("koi8-r"), ["không ở bảng mã được nhận"]),
    ("名前;住所\n協同組合;東京都千代田区\n".encode("shift_jis"), ["không ở bảng mã được nhận"]),
    (b"\xff\xfe" + "Tên;Xã\n".encode("utf-16-le") + b"\x00\xd8", ["UTF-16 bị hỏng"]),
])
def test_csv_in_no_supported_encoding_is_rejected_with_a_reason(tmp_path, data, words):
    with pytest.raises(CsvEncodingError) as e:
        decode_csv_bytes(data)
    for w in words:
        assert w in str(e.value)
    p = tmp_path / "x.csv"
    p.write_bytes(data)
    with pytest.raises(ReadError):
        read_sheets(p)
    r = ingest(p)
    assert issues(r) == [("", "unreadable_file", "rejected")]
    assert any(w in r.file_issues[0].reason for w in words)


def test_csv_in_tcvn3_bytes_is_read_and_converted(tmp_path):
    text = ("Tªn HTX;X·;Ngµy thµnh lËp;LÜnh vùc;T×nh tr¹ng;Sè thµnh viªn\r\n"
            "Hîp t¸c x· N«ng nghiÖp T©n LËp;X· T©n LËp;01/02/2015;N«ng nghiÖp;§ang ho¹t ®éng;20\r\n"
            "HTX DÞch vô §ång T©m;X· ¢n NghÜa;2016-03-04;DÞch vô;Ho¹t ®éng;12\r\n")
    data = text.encode("cp1252")
    assert decode_csv_bytes(data) == (text, "Windows-1252 (TCVN3/VNI)")
    p = tmp_path / "tht.csv"
    p.write_bytes(data)
    (s,) = read_sheets(p)
    assert s.columns[0] == ["Tên HTX", "Hợp tác xã Nông nghiệp Tân Lập", "HTX Dịch vụ Đồng Tâm"]
    assert s.columns[1][2] == "Xã Ân Nghĩa"
    assert sheet_conversions(s) == [lt.SheetConversion("TCVN3", 14, "Tªn HTX", "Tên HTX")]


# --------------------------------------------------------------------------- cells in workbooks
def _htx_rows(names: list[str], communes: list[str]) -> list[list]:
    return [htx_row(k + 1, f"54001000{k + 1:02d}", n, commune=c) for k, (n, c) in enumerate(zip(names, communes))]


UNICODE_NAMES = ["Hợp tác xã Nông nghiệp Tân Lập", "HTX Dịch vụ Đồng Tâm", "HTX Chè Đông Bắc",
                 "HỢP TÁC XÃ THỦY SẢN HÒA BÌNH"]
UNICODE_COMMUNES = ["Xã Tân Lập", "Xã Ân Nghĩa", "Xã Tự Do", "Thị trấn Vụ Bản"]


@pytest.mark.parametrize("encoding,encode", [("TCVN3", encode_tcvn3), ("VNI", encode_vni)])
def test_xlsx_with_legacy_names_loads_unicode_names(tmp_path, encoding, encode):
    uni = write_xlsx(tmp_path / "u" / "htx.xlsx", [G("DS HTX", [HTX_HEAD, *_htx_rows(UNICODE_NAMES, UNICODE_COMMUNES)])])
    legacy_rows = _htx_rows([encode(n) for n in UNICODE_NAMES], [encode(c) for c in UNICODE_COMMUNES])
    assert legacy_rows[0][2] == {"TCVN3": "Hîp t¸c x· N«ng nghiÖp T©n LËp",
                                 "VNI": "Hôïp taùc xaõ Noâng nghieäp Taân Laäp"}[encoding]
    leg = write_xlsx(tmp_path / "l" / "htx.xlsx", [G("DS HTX", [HTX_HEAD, *legacy_rows]),
                                                   G("Ghi chú", [["Ghi chú"], ["Không có"]])])
    r_uni, r_leg = ingest(uni), ingest(leg)
    got = r_leg.forms["HTX"].sort("row_number").to_dicts()
    assert [x["name"] for x in got] == UNICODE_NAMES
    assert [x["commune"] for x in got] == UNICODE_COMMUNES
    assert r_leg.forms["HTX"].height == r_uni.forms["HTX"].height == 4   # rows loaded unchanged
    assert rejected(r_leg) == rejected(r_uni) == []
    # the note: one per sheet and encoding, counted in cells
    sheets = read_sheets(leg)
    assert [sheet_conversions(s) for s in sheets] == [
        [lt.SheetConversion(encoding, 8, legacy_rows[0][2], UNICODE_NAMES[0])], []]
    (issue,) = legacy_issues("2020/lac-son/htx.xlsx", sheets)
    assert (issue.source_file, issue.sheet, issue.reason_code, issue.severity) == \
        ("2020/lac-son/htx.xlsx", "DS HTX", "legacy_encoding_converted", "ignored")
    assert issue.reason.startswith(f"Văn bản mã {encoding} đã được chuyển sang Unicode (8 ô)")
    assert issue.reason.endswith("[legacy_encoding_converted]")
    assert legacy_issues("u.xlsx", read_sheets(uni)) == []


def test_xlsx_with_legacy_header_is_recognised(tmp_path):
    head = [encode_tcvn3(h) for h in HTX_HEAD]
    assert head[2] == "Tªn HTX"
    rows = _htx_rows([encode_tcvn3(n) for n in UNICODE_NAMES], UNICODE_COMMUNES)
    r = ingest(write_xlsx(tmp_path / "h.xlsx", [G("S", [head, *rows])]))
    assert [x["name"] for x in r.forms["HTX"].sort("row_number").to_dicts()] == UNICODE_NAMES


def test_mixed_unicode_cells_are_left_alone(tmp_path):
    """A Unicode template (headers, drop-down values "Khá", "Xã") with TCVN3 names pasted in:
    only the names change ("Khá" would be "Khỏ" and "Tên" "Tờn" if read as TCVN3)."""
    rows = _htx_rows([encode_tcvn3(n) for n in UNICODE_NAMES], ["Xã"] * 4)
    (s,) = read_sheets(write_xlsx(tmp_path / "m.xlsx", [G("S", [HTX_HEAD, *rows])]))
    assert s.columns[2] == ["Tên HTX", *UNICODE_NAMES]
    assert s.columns[3] == ["Xã"] * 5
    assert s.columns[13] == ["Xếp loại", *["Khá"] * 4]


class _Sheet:
    def __init__(self, columns):
        self.name, self.columns = "S", columns


def test_conversion_is_per_distinct_value():
    lt._candidates.cache_clear()
    names = ["Hîp t¸c x· Sè " + str(k % 3) for k in range(3000)]
    s = _Sheet([names, [1.0] * 3000, ["X· T©n LËp"] * 3000, [None] * 3000])
    convert_sheets([s])
    assert s.columns[0][:3] == ["Hợp tác xã Số 0", "Hợp tác xã Số 1", "Hợp tác xã Số 2"]
    assert s.columns[2] == ["Xã Tân Lập"] * 3000 and s.columns[1] == [1.0] * 3000
    assert lt._candidates.cache_info().misses == 4   # one detection per distinct string
    assert sheet_conversions(s) == [lt.SheetConversion("TCVN3", 6000, "Hîp t¸c x· Sè 0", "Hợp tác xã Số 0")]


def test_ambiguous_value_takes_the_encoding_of_the_sheet():
    s = _Sheet([["LÖ Ninh", "Hîp t¸c x· LÖ Ninh", "X· T©n LËp"]])
    convert_sheets([s])
    assert s.columns[0] == ["Lệ Ninh", "Hợp tác xã Lệ Ninh", "Xã Tân Lập"]
    v = _Sheet([["LÖ Ninh", "Hôïp taùc xaõ Ñoàng Taâm"]])
    convert_sheets([v])
    assert v.columns[0] == ["LƯ Ninh", "Hợp tác xã Đồng Tâm"]
