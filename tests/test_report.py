"""Province report: figures shown (rendered by headless Chromium) equal the marts."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import openpyxl
import pytest

from coop.report import build_report, money_phrase, people_phrase, target_text, vn_number
from outputs_fixture import make_fixture_warehouse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def vn(x: float, d: int) -> str:
    """Test's own Vietnamese formatting: swap the separators of Python's `,` grouping."""
    return f"{x:,.{d}f}".translate(str.maketrans(",.", ".,"))


def chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (make test installs it)"
    return subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={tmp / 'chrome-profile'}", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp)})


class Cells(HTMLParser):
    """data-key -> text of the rendered DOM, and the narrative paragraphs."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, str] = {}
        self.paras: list[str] = []
        self._key: str | None = None
        self._para = False
        self._buf: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        a = dict(attrs)
        if tag == "td" and "data-key" in a:
            self._key, self._buf = a["data-key"], []
        if tag == "p" and "lead" in (a.get("class") or ""):
            self._para, self._buf = True, []

    def handle_endtag(self, tag):
        if tag == "td" and self._key:
            self.cells[self._key] = "".join(self._buf).strip()
            self._key = None
        if tag == "p" and self._para:
            self.paras.append("".join(self._buf).strip())
            self._para = False

    def handle_data(self, data):
        if self._key or self._para:
            self._buf.append(data)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    wh = make_fixture_warehouse(tmp / "wh.duckdb")
    files = build_report(2020, wh, tmp / "out")
    dom = chromium(["--dump-dom", files.html.as_uri()], tmp)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = Cells()
    parser.feed(dom.stdout)
    shot = tmp / "shot.png"
    res = chromium([f"--screenshot={shot}", "--window-size=1280,4000", files.html.as_uri()], tmp)
    assert res.returncode == 0, res.stderr[-2000:]
    return wh, files, parser, shot


def test_number_formatting_by_hand():
    assert vn_number(1234567.891, 2) == "1.234.567,89"
    assert vn_number(3240, 0) == "3.240"
    assert vn_number(-0.04, 1) == "0,0"
    assert vn_number(None) == "–"
    assert money_phrase(3240) == "3,24 tỷ đồng"
    assert money_phrase(2230.4) == "2,23 tỷ đồng"
    assert money_phrase(401.2) == "401 triệu đồng"
    assert money_phrase(56.5) == "56,5 triệu đồng"
    assert people_phrase(12700) == "12,7 nghìn"
    assert people_phrase(3012) == "3.012"
    assert target_text(65, None) == "từ 65"
    assert target_text(6, 8) == "6 - 8"
    assert target_text(500, 500) == "500"


def test_narrative_reads_like_the_article(built):
    _wh, _files, dom, _shot = built
    text = " ".join(dom.paras)
    # hand-made fixture: 2020 HTX 66 new / 422 active / 12 700 members / 3 240 / 401 / 4.0;
    # THT 20 / 203 / 3 012 / 581 / 52 / 1.4; 3 HTX awaiting support; plan 60 HTX (từ), 25 THT
    for phrase in [
        "Trong năm 2020, toàn tỉnh có 20 tổ hợp tác (THT) thành lập mới, chưa đạt kế hoạch (25), "
        "66 hợp tác xã (HTX), liên hiệp HTX thành lập mới, vượt kế hoạch (từ 60).",
        "203 THT đang hoạt động với 3.012 thành viên, doanh thu bình quân 581 triệu đồng/năm, "
        "lợi nhuận bình quân 52 triệu đồng/năm, thu nhập bình quân 1,4 triệu đồng/người/tháng",
        "422 HTX đang hoạt động (trong đó 2 quỹ tín dụng nhân dân) với 12,7 nghìn thành viên, doanh thu bình quân 3,24 tỷ đồng/năm, "
        "lợi nhuận bình quân 401 triệu đồng/năm, thu nhập bình quân 4 triệu đồng/người/tháng",
        "toàn tỉnh còn 3 HTX thành lập mới chưa bố trí được kinh phí hỗ trợ",
        "nhiều nhất là Thành phố Hòa Bình (2 HTX)",
        "lâu nhất 1.022 ngày",
        "Chỉ tiêu năm 2021: thành lập mới từ 65 HTX, liên hiệp HTX và 15 THT; doanh thu bình quân 1 HTX tăng 6 - 8%",
        "bồi dưỡng cho 500 lượt cán bộ, thành viên HTX; 20 HTX ứng dụng công nghệ cao",
    ]:
        assert phrase in text, phrase


def test_tables_show_the_marts(built):
    wh, _files, dom, _shot = built
    con = duckdb.connect(str(wh), read_only=True)
    dec = {"avg_revenue_mvnd": 1, "avg_profit_mvnd": 1, "avg_income_mvnd_month": 2,
           "revenue_growth_pct": 1, "income_growth_pct": 1}
    checked = 0
    for year, et, *vals in con.execute("SELECT * FROM marts.province_indicators").fetchall():
        cols = [d[0] for d in con.description][2:]
        for col, v in zip(cols, vals):
            key = f"province.{year}.{et}.{col}"
            assert dom.cells[key] == ("–" if v is None else vn(v, dec.get(col, 0))), key
            checked += 1
    for code, et, new, active, members, rev, income in con.execute(
        "SELECT district_code, entity_type, new_formed, active_count, members, avg_revenue_mvnd, "
        "avg_income_mvnd_month FROM marts.district_indicators WHERE year = 2020"
    ).fetchall():
        assert dom.cells[f"district.{code}.{et}.new_formed"] == vn(new, 0)
        assert dom.cells[f"district.{code}.{et}.active_count"] == vn(active, 0)
        assert dom.cells[f"district.{code}.{et}.members"] == vn(members, 0)
        assert dom.cells[f"district.{code}.{et}.avg_revenue_mvnd"] == vn(rev, 1)
        if et == "HTX":
            assert dom.cells[f"district.{code}.{et}.avg_income_mvnd_month"] == vn(income, 2)
        checked += 4
    for sector, et, active in con.execute(
        "SELECT sector, entity_type, active_count FROM marts.sector_indicators WHERE year = 2020"
    ).fetchall():
        assert dom.cells[f"sector.{sector}.{et}.active_count"] == vn(active, 0)
    for code, n, avg, mx in con.execute(
        "SELECT district_code, count(*), avg(waiting_days), max(waiting_days) FROM marts.funding_backlog "
        "WHERE year = 2020 GROUP BY ALL"
    ).fetchall():
        assert dom.cells[f"backlog.{code}.count"] == vn(n, 0)
        assert dom.cells[f"backlog.{code}.avg_wait"] == vn(avg, 0)
        assert dom.cells[f"backlog.{code}.max_wait"] == vn(mx, 0)
    # plan: by hand from the fixture literals
    assert dom.cells["plan.new_htx.target"] == "từ 60"
    assert dom.cells["plan.new_htx.actual"] == "66"
    assert dom.cells["plan.new_htx.attainment"] == "110,0"
    assert dom.cells["plan.new_htx.status"] == "Đạt"
    assert dom.cells["plan.new_tht.status"] == "Chưa đạt"
    assert dom.cells["plan.new_tht.attainment"] == "80,0"
    assert dom.cells["plan.htx_revenue_growth_pct.target"] == "6 - 8"
    assert dom.cells["plan.htx_revenue_growth_pct.attainment"] == "–"  # a % of a growth % means nothing
    assert dom.cells["plan.training_turns.actual"] == "–"
    assert dom.cells["plan.training_turns.status"] == "Chưa có số liệu"
    con.close()
    assert checked > 50


def test_html_is_self_contained_with_inline_svg_charts(built):
    _wh, files, dom, _shot = built
    src = files.html.read_text(encoding="utf-8")
    assert "<script" not in src.lower() and "<link" not in src.lower() and " src=" not in src.lower()
    assert "http" not in src.replace('xmlns="http://www.w3.org/2000/svg"', "").replace("http://x", "")
    assert "<h1>Báo cáo tình hình phát triển kinh tế tập thể tỉnh Hòa Bình năm 2020</h1>" in src
    assert src.count("<svg") >= 6 and {"svg", "rect", "polyline"} <= dom.tags
    # the hostile HTX name is shown as text, not markup
    assert "=HYPERLINK(&quot;http://x&quot;)" in src


def test_screenshot_is_produced_and_not_blank(built):
    *_rest, shot = built
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 4000)
    # a blank white page of this size compresses to a few kB; text, tables and charts do not
    assert len(data) > 100_000


def test_excel_has_the_same_tables_and_no_formula(built):
    wh, files, _dom, _shot = built
    book = openpyxl.load_workbook(files.xlsx)
    assert book.sheetnames == ["Báo cáo", "Toàn tỉnh", "Theo huyện", "Theo lĩnh vực", "Kế hoạch",
                               "Chưa hỗ trợ theo huyện", "Danh sách chờ hỗ trợ"]
    ws = book["Toàn tỉnh"]
    rows = {r[0]: r for r in ws.iter_rows(min_row=4, values_only=True)}
    assert rows["Đang hoạt động (31/12)"][2:] == (400, 422, 190, 203)
    assert rows["Doanh thu bình quân"][2:] == (3000.0, 3240.0, 560.0, 581.0)
    ws = book["Danh sách chờ hỗ trợ"]
    cells = {c.value: c for row in ws.iter_rows(min_row=4) for c in row}
    hostile = cells['=HYPERLINK("http://x")']
    assert hostile.data_type == "s" and hostile.quotePrefix
    narrative = book["Báo cáo"]["A3"].value
    assert "12,7 nghìn thành viên" in narrative
    with zipfile.ZipFile(files.xlsx) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert "<f>" not in z.read(name).decode()


# ------------------------------------------------------------------ the sample province, end to end
def _text(html_src: str) -> str:
    import html as _html
    import re

    return " ".join(_html.unescape(re.sub(r"<[^>]+>", " ", html_src)).split())


def test_sample_report_2020_shows_the_article_figures(tmp_path):
    from outputs_fixture import sample_warehouse

    wh = sample_warehouse()
    files = build_report(2020, wh, tmp_path)
    text = _text(files.html.read_text(encoding="utf-8"))
    # the seed article (../shared/reference/province-report-2021-01.txt), which the sample reproduces
    for phrase in ["20 tổ hợp tác (THT) thành lập mới", "66 hợp tác xã (HTX), liên hiệp HTX thành lập mới",
                   "203 THT đang hoạt động", "422 HTX đang hoạt động", "với 12,7 nghìn thành viên",
                   "doanh thu bình quân 3,24 tỷ đồng/năm", "lợi nhuận bình quân 401 triệu đồng/năm",
                   "thu nhập bình quân 4 triệu đồng/người/tháng", "doanh thu bình quân 581 triệu đồng/năm",
                   "lợi nhuận bình quân 52 triệu đồng/năm", "thu nhập bình quân 1,4 triệu đồng/người/tháng",
                   "còn 119 HTX thành lập mới chưa bố trí được kinh phí hỗ trợ",
                   "Chỉ tiêu năm 2021: thành lập mới từ 65 HTX, liên hiệp HTX và 15 THT"]:
        assert phrase in text, phrase
    # every district's HTX figures as the marts hold them
    parser = Cells()
    parser.feed(files.html.read_text(encoding="utf-8"))
    con = duckdb.connect(str(wh), read_only=True)
    rows = con.execute("SELECT district_code, active_count, members FROM marts.district_indicators "
                       "WHERE year = 2020 AND entity_type = 'HTX'").fetchall()
    con.close()
    assert len(rows) >= 9
    for code, active, members in rows:
        assert parser.cells[f"district.{code}.HTX.active_count"] == vn(active, 0)
        assert parser.cells[f"district.{code}.HTX.members"] == vn(members, 0)


def test_sample_report_2021_shows_plan_misses(tmp_path):
    from outputs_fixture import sample_warehouse

    wh = sample_warehouse()
    parser = Cells()
    parser.feed(build_report(2021, wh, tmp_path).html.read_text(encoding="utf-8"))
    con = duckdb.connect(str(wh), read_only=True)
    plan = con.execute("SELECT indicator_code, status FROM marts.plan_vs_actual WHERE year = 2021").fetchall()
    con.close()
    labels = {"met": "Đạt", "not_met": "Chưa đạt", "no_data": "Chưa có số liệu"}
    assert len(plan) == 6
    for code, status in plan:
        assert parser.cells[f"plan.{code}.status"] == labels[status]
    # the follow-up report: revenue per HTX fell from 3,240 to 2,230 million -> growth target missed
    assert parser.cells["plan.htx_revenue_growth_pct.status"] == "Chưa đạt"
