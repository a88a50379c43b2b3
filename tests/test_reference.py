"""Reference data: districts with validity, vocabularies with the accepted spellings of forms.md."""

import datetime as dt
import shutil
import unicodedata

import pytest

from coop.reference import REFERENCE_DIR, District, ReferenceError_, load_reference

REF = load_reference(province="25")  # today's Phú Thọ: former Hòa Bình (17), Phú Thọ (25), Vĩnh Phúc (26)

HOA_BINH = {
    "148": "Thành phố Hòa Bình", "150": "Đà Bắc", "151": "Kỳ Sơn", "152": "Lương Sơn", "153": "Kim Bôi",
    "154": "Cao Phong", "155": "Tân Lạc", "156": "Mai Châu", "157": "Lạc Sơn", "158": "Yên Thủy", "159": "Lạc Thủy",
}


def test_districts_of_hoa_binh():
    hb = [d for d in REF.districts if d.province_code == "17"]
    assert {d.code: d.name for d in hb} == HOA_BINH
    assert [d.code for d in hb] == sorted(HOA_BINH)


def test_province_setting_serves_today_s_phu_tho_and_its_predecessors():
    # units.md: 148 communes, 46 in the former Hòa Bình area, 66 Phú Thọ, 36 Vĩnh Phúc
    assert (REF.province_code, REF.province_name) == ("25", "Phú Thọ")
    assert REF.areas == {"17": "Hòa Bình", "25": "Phú Thọ", "26": "Vĩnh Phúc"}
    assert len(REF.communes) == 148
    by_area = {a: sum(1 for c in REF.communes if c.area_code == a) for a in REF.areas}
    assert by_area == {"17": 46, "25": 66, "26": 36}
    assert {d.province_code for d in REF.districts} == {"17", "25", "26"}
    assert len(REF.districts) == 11 + 13 + 9  # Kỳ Sơn included (until 2020)
    assert load_reference(province="Phú Thọ").province_code == "25"
    assert load_reference(province="tinh phu tho").province_code == "25"


def test_province_setting_by_name_country_and_former_province():
    assert load_reference(province="Đà Nẵng").areas == {"48": "Đà Nẵng", "49": "Quảng Nam"}
    vn = load_reference(province="VN")
    assert vn.is_country and len(vn.provinces) == 34 and len(vn.communes) == 3321 and len(vn.areas) == 63
    with pytest.raises(ReferenceError_, match="25"):
        load_reference(province="17")  # Hòa Bình no longer exists: the message names Phú Thọ (25)
    with pytest.raises(ReferenceError_):
        load_reference(province="Atlantis")


def test_ky_son_validity():
    ky_son = REF.find_district("Kỳ Sơn")
    assert ky_son.code == "151" and ky_son.valid_to == dt.date(2020, 1, 1)
    assert ky_son.valid_in(2018) and ky_son.valid_in(2019)
    assert not ky_son.valid_in(2020) and not ky_son.valid_in(2021)
    assert REF.find_district("148").valid_in(2021)
    assert len(REF.districts_valid_in(2019)) == 33 and len(REF.districts_valid_in(2020)) == 32
    # no district level from 1 July 2025: 31/12/2025 is past every district's valid_to
    assert REF.districts_valid_in(2024) and not REF.districts_valid_in(2025)
    assert len(REF.units_expected(2024)) == 32 and len(REF.units_expected(2025)) == 148


def test_valid_from():
    d = District("999", "Mới", "17", valid_from=dt.date(2021, 1, 1))
    assert not d.valid_in(2020) and d.valid_in(2021)


@pytest.mark.parametrize(
    "folder,code",
    [
        ("lac-son", "157"), ("Lạc Sơn", "157"), ("Huyen Lac Son", "157"), ("157", "157"), ("huyện lạc sơn", "157"),
        (unicodedata.normalize("NFD", "Lạc Sơn"), "157"),
        ("Hoà Bình", "148"), ("Hòa Bình", "148"), ("TP Hòa Bình", "148"), ("thanh-pho-hoa-binh", "148"), ("148", "148"),
        ("Yên Thuỷ", "158"), ("yen_thuy", "158"), ("Lạc Thuỷ", "159"), ("ky-son", "151"), ("Đà Bắc", "150"),
        ("da-bac", "150"), ("Tân Lạc", "155"), ("cao phong", "154"),
        ("TPHoaBinh", "148"), ("HuyenLacSon", "157"), ("huyện_tân_lạc", "155"), ("TP.Hoà Bình", "148"),
    ],
)
def test_find_district(folder, code):
    assert REF.find_district(folder).code == code


# units.md "Which unit reports which year": code or name, with or without prefix, diacritics or not
@pytest.mark.parametrize(
    "folder,year,code",
    [
        ("Lạc Sơn", 2020, "157"), ("Lạc Sơn", 2025, "05266"),        # a bare name: the unit valid that year
        ("lac-son", 2026, "05266"), ("Xã Lạc Sơn", 2025, "05266"), ("xa-lac-son", 2026, "05266"),
        ("XA LAC SON", 2025, "05266"), ("05266", 2025, "05266"), ("5266", 2025, "05266"),
        ("Phường Hòa Bình", 2025, "04795"), ("phuong_hoa_binh", 2025, "04795"), ("Hoà Bình", 2025, "04795"),
        ("Hòa Bình", 2020, "148"), ("Kỳ Sơn", 2019, "151"), ("Kỳ Sơn", 2025, "04894"),
        ("Phú Thọ", 2020, "228"), ("Phường Phú Thọ", 2025, "07942"), ("Tam Dương", 2025, "08869"),
        ("Huyện Tam Dương", 2024, "247"), ("157", 2024, "157"),
    ],
)
def test_find_unit(folder, year, code):
    m = REF.find_unit(folder, year)
    assert m.ok and m.unit.code == code, m.message
    assert m.unit.level == ("commune" if year >= 2025 else "district")


@pytest.mark.parametrize(
    "folder,year,reason",
    [
        ("Huyện Lạc Sơn", 2025, "district_after_reform"),   # a prefix names the level
        ("157", 2025, "district_after_reform"),
        ("thanh-pho-hoa-binh", 2026, "district_after_reform"),
        ("Xã Lạc Sơn", 2020, "commune_before_reform"),
        ("05266", 2024, "commune_before_reform"),
        ("Kỳ Sơn", 2021, "district_not_valid_for_year"),
        ("xyz", 2025, "unknown_commune"), ("xyz", 2020, "unknown_district"),
        ("Quan Hoa", 2020, "unknown_district"),             # a district of Thanh Hóa, not of Phú Thọ
    ],
)
def test_find_unit_rejects_with_the_reform_reason(folder, year, reason):
    m = REF.find_unit(folder, year)
    assert not m.ok and m.reason_code == reason
    if reason == "district_after_reform":
        assert "01/07/2025" in m.message and "xã" in m.message
    if reason == "commune_before_reform":
        assert "2025" in m.message and "huyện" in m.message


def test_name_clashes_list_the_candidates():
    # Tiền Giang (82) and Đồng Tháp (87) both had a district "Châu Thành"; today both are Đồng Tháp (82)
    ref = load_reference(province="82")
    m = ref.find_unit("Châu Thành", 2020)
    assert m.reason_code == "ambiguous_unit"
    assert sorted(c.code for c in m.candidates) == ["821", "877"]
    assert "821" in m.message and "877" in m.message and "Tiền Giang" in m.message and "Đồng Tháp" in m.message
    assert ref.find_unit("821", 2020).unit.code == "821"          # the code settles it
    # today's communes: "Phường Mỹ Tho" and "Xã Mỹ Thọ" fold alike
    m = ref.find_unit("My Tho", 2025)
    assert m.reason_code == "ambiguous_unit" and {c.code for c in m.candidates} == {"28261", "30076"}
    assert ref.find_unit("Mỹ Thọ", 2025).unit.code == "30076"       # written with its diacritics
    assert ref.find_unit("Phuong My Tho", 2025).unit.code == "28261"  # or with its prefix
    # the whole country: ten former districts named Châu Thành
    assert len(load_reference(province="VN").find_unit("Chau Thanh", 2020).candidates) == 10


@pytest.mark.parametrize("folder", ["xyz", "149", "lac", "son", "", "province", "Hà Nội", "huyen", "tp"])
def test_find_district_unknown(folder):
    assert REF.find_district(folder) is None


@pytest.mark.parametrize("name,expected", [("province", True), ("tinh", True), ("tỉnh", True), ("Tỉnh", True),
                                           ("TINH", True), ("lac-son", False), ("prov", False)])
def test_province_folder(name, expected):
    assert REF.is_province_folder(name) is expected


# every accepted spelling of forms.md "Categories" (plus kind, rating, plan codes)
SPELLINGS = {
    "sector": {
        "agriculture": ["Nông nghiệp", "Nông, lâm, ngư nghiệp", "Nông lâm nghiệp"],
        "handicraft": ["Tiểu thủ công nghiệp", "TTCN", "Công nghiệp - TTCN", "Công nghiệp, tiểu thủ công nghiệp"],
        "transport": ["Vận tải", "Giao thông vận tải"],
        "tourism": ["Du lịch"],
        "trade_services": ["Thương mại", "Dịch vụ", "Thương mại - dịch vụ", "TM-DV"],
        "construction": ["Xây dựng"],
        "electricity": ["Điện", "Điện năng"],
        "market": ["Chợ", "Quản lý chợ"],
        "credit_fund": ["Quỹ tín dụng nhân dân", "QTDND"],
        "environment": ["Môi trường", "Vệ sinh môi trường"],
        "other": ["Khác"],
    },
    "status": {
        "active": ["Đang hoạt động", "Hoạt động"],
        "suspended": ["Ngừng hoạt động", "Tạm ngừng hoạt động", "Tạm ngừng", "Chờ giải thể"],
        "dissolved": ["Giải thể", "Đã giải thể"],
    },
    "support_type": {
        "establishment": ["Thành lập mới", "Hỗ trợ thành lập mới", "Thành lập"],
        "training": ["Đào tạo", "Bồi dưỡng", "Đào tạo, bồi dưỡng"],
        "trade_promotion": ["Xúc tiến thương mại", "XTTM"],
        "technology": ["Ứng dụng khoa học công nghệ", "KHCN"],
        "infrastructure": ["Kết cấu hạ tầng", "Hạ tầng"],
        "credit": ["Tín dụng", "Vốn vay"],
        "other": ["Khác"],
    },
    "kind": {"htx": ["HTX", "Hợp tác xã"], "union": ["Liên hiệp HTX", "LH HTX", "Liên hiệp hợp tác xã"]},
    "rating": {"good": ["Tốt"], "fair": ["Khá"], "average": ["Trung bình"], "weak": ["Yếu", "Yếu kém"]},
    "plan_code": {c: [c] for c in ["new_htx", "new_tht", "htx_revenue_growth_pct", "htx_income_growth_pct",
                                   "training_turns", "high_tech_htx"]},
}
CASES = [(v, code, s) for v, codes in SPELLINGS.items() for code, ss in codes.items() for s in ss]


@pytest.mark.parametrize("vocab,code,spelling", CASES)
def test_vocabulary_spellings(vocab, code, spelling):
    voc = REF.vocab(vocab)
    assert voc.match(spelling) == code
    assert voc.match(spelling.upper()) == code
    assert voc.match(unicodedata.normalize("NFD", spelling)) == code
    assert voc.match(f"  {spelling} ") == code


def test_vocabulary_codes_are_the_canonical_values():
    for vocab, codes in SPELLINGS.items():
        assert REF.vocab(vocab).codes == list(codes), vocab


@pytest.mark.parametrize(
    "vocab,text,code",
    [
        ("sector", "Nong nghiep", "agriculture"),       # without diacritics
        ("sector", "TM - DV", "trade_services"),        # spaces around '-'
        ("sector", "Thương mại-Dịch vụ", "trade_services"),
        ("sector", "Nông ,lâm , ngư nghiệp", "agriculture"),
        ("sector", "Công nghiệp-TTCN", "handicraft"),
        ("status", "dang hoat dong", "active"),
        ("rating", "YẾU KÉM", "weak"),
        ("plan_code", "NEW_HTX", "new_htx"),
    ],
)
def test_vocabulary_tolerance(vocab, text, code):
    assert REF.vocab(vocab).match(text) == code


@pytest.mark.parametrize("vocab,text", [("sector", "Nông"), ("sector", "Công nghiệp"), ("status", "Đang"),
                                        ("rating", "Xuất sắc"), ("plan_code", "new htx x"), ("sector", "")])
def test_vocabulary_unknown(vocab, text):
    assert REF.vocab(vocab).match(text) is None


def test_labels_are_first_spelling():
    assert REF.vocab("rating").labels == {"good": "Tốt", "fair": "Khá", "average": "Trung bình", "weak": "Yếu"}
    assert REF.vocab("status").labels["active"] == "Đang hoạt động"
    with pytest.raises(KeyError):
        REF.vocab("nope")


def test_sample_generator_spellings_match():
    """Every spelling the sample generator writes maps to the code it means."""
    from sample import generate as sample

    for code, (_w, _words, spellings) in sample.SECTORS.items():
        for s in spellings:
            assert REF.vocab("sector").match(s) == code, s
    for s in sample.CREDIT_SPELL:
        assert REF.vocab("sector").match(s) == "credit_fund"
    for vocab, table in [("status", sample.STATUS_SPELL), ("kind", sample.KIND_SPELL),
                         ("rating", sample.RATING_SPELL), ("support_type", sample.SUPPORT_SPELL)]:
        for code, spellings in table.items():
            for s in spellings:
                if s:
                    assert REF.vocab(vocab).match(s) == code, (vocab, s)


def test_another_province_is_a_data_change(tmp_path):
    shutil.copy(REFERENCE_DIR / "vocabularies.toml", tmp_path / "vocabularies.toml")
    (tmp_path / "districts.csv").write_text(
        "district_code,district_name,province_code,valid_from,valid_to\n"
        "001,Quận Ba Đình,01,,\n"
        "250,Huyện Mê Linh,01,2008-08-01,\n",
        encoding="utf-8",
    )
    ref = load_reference(tmp_path)
    assert ref is load_reference(tmp_path)  # cached per directory
    assert ref.find_district("me-linh").code == "250"
    assert ref.find_district("Huyen Me Linh").code == "250"
    assert not ref.find_district("250").valid_in(2007) and ref.find_district("250").valid_in(2008)
    assert ref.find_district("1").code == "001"


def test_broken_reference(tmp_path):
    shutil.copy(REFERENCE_DIR / "vocabularies.toml", tmp_path / "vocabularies.toml")
    (tmp_path / "districts.csv").write_text(
        "district_code,district_name,province_code,valid_from,valid_to\n157,Lạc Sơn,17,,2020-13-01\n",
        encoding="utf-8",
    )
    with pytest.raises(ReferenceError_, match="line 2"):
        load_reference(tmp_path)
    with pytest.raises(ReferenceError_):
        load_reference(tmp_path / "missing")
