"""Text cleaning and folding (forms.md: NFC text, folder/header/category matching)."""

import unicodedata

import pytest

from coop.text import category_key, clean_text, district_key, fold, header_key


def test_clean_text_nfc_trim_collapse():
    nfd = unicodedata.normalize("NFD", "Lạc Sơn")
    assert nfd != "Lạc Sơn"
    assert clean_text(f"  {nfd}\n\t HTX\u00a0 Mới  ") == "Lạc Sơn HTX Mới"
    assert unicodedata.is_normalized("NFC", clean_text(nfd))
    assert clean_text("a\r\nb") == "a b"
    assert clean_text("\u200bHTX\ufeff") == "HTX"
    assert clean_text("   ") == ""


@pytest.mark.parametrize(
    "a,b",
    [
        ("Hoà Bình", "Hòa Bình"),      # old / new tone-mark placement
        ("Yên Thuỷ", "Yên Thủy"),
        ("Lạc Thuỷ", "lac thuy"),
        ("ĐÀ BẮC", "da bac"),
        (unicodedata.normalize("NFD", "Kỳ Sơn"), "Kỳ Sơn"),
        (unicodedata.normalize("NFD", "Đà Bắc"), "Da Bac"),
    ],
)
def test_fold_equal(a, b):
    assert fold(a) == fold(b)


def test_fold_values():
    assert fold("  Đà  Bắc ") == "da bac"
    assert fold("Hòa Bình") == "hoa binh"
    assert fold("Thủy") == fold("Thuỷ") == "thuy"
    assert fold("Lạc Sơn") != fold("Lạc Thủy")


@pytest.mark.parametrize(
    "text,key",
    [
        ("Doanh thu (triệu đồng)", "doanh thu"),
        ("Doanh thu\n(triệu đồng)", "doanh thu"),
        ("DOANH   THU", "doanh thu"),
        ("Thu nhập BQ (tr.đ/người/tháng)", "thu nhap bq"),
        ("Số thành viên\n(người)", "so thanh vien"),
        ("Ngày thành lập (dd/mm/yyyy)", "ngay thanh lap"),
        ("Xã/phường/thị trấn", "xa/phuong/thi tran"),
        ("Tên HTX, liên hiệp HTX", "ten htx, lien hiep htx"),
        ("Tên HTX (*)", "ten htx"),
        ("Tên HTX *", "ten htx"),
        ("Lĩnh vực:", "linh vuc"),
        ("(1)", "1"),  # a column-number cell does not become empty
    ],
)
def test_header_key(text, key):
    assert header_key(text) == key


@pytest.mark.parametrize(
    "name",
    ["lac-son", "Lạc Sơn", "Huyen Lac Son", "Huyện Lạc Sơn", "LAC_SON", "lac.son", "LacSon",
     unicodedata.normalize("NFD", "huyện lạc sơn")],
)
def test_district_key_lac_son(name):
    assert district_key(name) == "lacson"


@pytest.mark.parametrize(
    "name",
    ["Hoà Bình", "Hòa Bình", "TP Hòa Bình", "TP. Hoà Bình", "tp-hoa-binh", "thanh-pho-hoa-binh",
     "Thành phố Hòa Bình", "THANH PHO HOA BINH"],
)
def test_district_key_city(name):
    assert district_key(name) == "hoabinh"


def test_district_key_prefix_only_as_word():
    # "tp" is a prefix only as a separate word: a name starting with the letters stays whole
    assert district_key("Thị xã Kỳ Sơn") == "kyson"
    assert district_key("tpx") == "tpx"
    assert district_key("Huyenxyz") == "huyenxyz"


def test_category_key_spaces_around_punctuation():
    assert category_key("TM - DV") == category_key("tm-dv") == "tm-dv"
    assert category_key("Nông , lâm,ngư nghiệp") == category_key("Nông, lâm, ngư nghiệp")
    assert category_key("Công nghiệp – TTCN") == category_key("Công nghiệp-TTCN")
    assert category_key("Xã / phường") == "xa/phuong"
