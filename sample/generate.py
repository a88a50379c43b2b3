"""Deterministic sample province (today's Phú Thọ, 25: Hòa Bình's history 2018–2026) with its ground truth.

`python -m sample.generate --out data/raw [--seed N] [--scale K]` writes the reports as units really
send them (see `../shared/spec/forms.md` and `units.md`) and the ground truth (every valid row
with its file, sheet and Excel row number and its reporting unit; planted invalid rows; rejected
files; superseded forms; plan rows) as JSON to `data/sample/ground_truth.json`.

- 2018–2021: Hòa Bình's districts, calibrated to the province's reports (2020 and 2021 exactly,
  see `../shared/reference/`; 2018/2019 plausible). Unchanged, byte for byte, by what follows.
- 2022–2024: Hòa Bình's districts continue the same cooperatives (reg_codes), plus small
  registers of the former Phú Thọ (2023–2024) and Vĩnh Phúc (4 districts 2023, all 2024).
- 2025–2026: the communes of today: all 46 of the Hòa Bình area, a few of the two others.
  `reform_years` generates them from streams seeded by (seed, year, ...).

`--province 48` (any other province of today) writes instead the small sample of
`generate_small_province`. Units come from `schemas/reference/*.csv` (reference data).

The generator is deliberately independent of the pipeline's reading code: it writes the
files straight from the contract with xlsxwriter (.xlsx), xlwt (.xls), odfpy (.ods) and csv.
It is seeded (`random.Random`), uses no wall clock, and fixes the timestamps inside the
files, so a regeneration gives the same truth and the same bytes.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import random
import re
import shutil
import unicodedata
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

YEARS = (2018, 2019, 2020, 2021)              # calibrated to the articles (district reports of Hòa Bình)
EXT_YEARS = (2022, 2023, 2024, 2025, 2026)     # generated from separate streams (see reform_years)
REFORM_YEAR = 2025                             # from report year 2025 communes report, not districts

# code, name, weight (share of cooperatives), last valid year (None = still valid)
DISTRICTS: list[tuple[str, str, float, int | None]] = [
    ("148", "Thành phố Hòa Bình", 1.0, None),
    ("150", "Đà Bắc", 0.7, None),
    ("151", "Kỳ Sơn", 0.55, 2019),
    ("152", "Lương Sơn", 1.1, None),
    ("153", "Kim Bôi", 1.0, None),
    ("154", "Cao Phong", 0.9, None),
    ("155", "Tân Lạc", 1.0, None),
    ("156", "Mai Châu", 0.8, None),
    ("157", "Lạc Sơn", 1.2, None),
    ("158", "Yên Thủy", 0.9, None),
    ("159", "Lạc Thủy", 0.9, None),
]
DISTRICT_NAME = {c: n for c, n, _, _ in DISTRICTS}

COMMUNES: dict[str, list[str]] = {
    "148": ["Phường Phương Lâm", "Phường Đồng Tiến", "Phường Tân Thịnh", "Phường Thái Bình", "Xã Dân Chủ", "Xã Sủ Ngòi", "Xã Yên Mông", "Xã Trung Minh", "Xã Thịnh Lang"],
    "150": ["Xã Tu Lý", "Xã Cao Sơn", "Xã Hiền Lương", "Xã Toàn Sơn", "Xã Tân Minh", "Xã Mường Chiềng", "Xã Đồng Chum", "Xã Giáp Đắt", "Thị trấn Đà Bắc"],
    "151": ["Xã Dân Hạ", "Xã Mông Hóa", "Xã Hợp Thành", "Xã Phúc Tiến", "Xã Độc Lập", "Xã Hợp Thịnh", "Xã Dân Hòa", "Thị trấn Kỳ Sơn"],
    "152": ["Xã Hòa Sơn", "Xã Lâm Sơn", "Xã Cư Yên", "Xã Liên Sơn", "Xã Nhuận Trạch", "Xã Tân Vinh", "Xã Cao Dương", "Xã Thanh Lương", "Thị trấn Lương Sơn"],
    "153": ["Thị trấn Bo", "Xã Kim Bình", "Xã Nam Thượng", "Xã Vĩnh Tiến", "Xã Hạ Bì", "Xã Đú Sáng", "Xã Tú Sơn", "Xã Sơn Thủy"],
    "154": ["Thị trấn Cao Phong", "Xã Bắc Phong", "Xã Thu Phong", "Xã Tây Phong", "Xã Dũng Phong", "Xã Nam Phong", "Xã Thung Nai", "Xã Bình Thanh"],
    "155": ["Thị trấn Mãn Đức", "Xã Phong Phú", "Xã Quy Hậu", "Xã Ngọc Mỹ", "Xã Thanh Hối", "Xã Đông Lai", "Xã Tử Nê", "Xã Lũng Vân"],
    "156": ["Thị trấn Mai Châu", "Xã Chiềng Châu", "Xã Vạn Mai", "Xã Pà Cò", "Xã Bao La", "Xã Mai Hạ", "Xã Nà Phòn", "Xã Tòng Đậu"],
    "157": ["Thị trấn Vụ Bản", "Xã Ân Nghĩa", "Xã Nhân Nghĩa", "Xã Yên Phú", "Xã Tân Lập", "Xã Mỹ Thành", "Xã Văn Sơn", "Xã Quý Hòa"],
    "158": ["Thị trấn Hàng Trạm", "Xã Lạc Thịnh", "Xã Phú Lai", "Xã Yên Trị", "Xã Ngọc Lương", "Xã Bảo Hiệu", "Xã Đa Phúc", "Xã Hữu Lợi"],
    "159": ["Thị trấn Chi Nê", "Xã Thanh Hà", "Xã Phú Thành", "Xã Cố Nghĩa", "Xã Đồng Tâm", "Xã Khoan Dụ", "Xã An Bình", "Xã Hưng Thi"],
}

VILLAGES = ["Đồng Bài", "Bản Lác", "Xóm Mới", "Bản Chiềng", "Xóm Trung", "Bản Khả", "Xóm Bãi", "Đồng Tâm",
            "Bản Thung", "Xóm Đồi", "Bản Mường", "Xóm Cối", "Bản Nà", "Xóm Gò", "Bản Sáng", "Xóm Rộc",
            "Bản Vó", "Xóm Dằm", "Bản Tiện", "Xóm Bưa", "Bản Cang", "Xóm Láo", "Bản Pheo", "Xóm Cạn"]
HTX_WORDS = ["Thành Công", "Phát Đạt", "Đoàn Kết", "Hưng Thịnh", "Tân Tiến", "Thịnh Vượng", "Bình Minh",
             "Hợp Lực", "Xanh", "Sạch", "Hòa Phát", "An Phú", "Mường Vang", "Sông Đà", "Hương Sơn",
             "Nam Tiến", "Đồng Xanh", "Quyết Thắng", "Thành Đạt", "Vạn Phúc", "Hoa Ban", "Cam Cao Phong",
             "Bưởi Đỏ", "Chè Shan", "Dược Liệu", "Mật Ong", "Nhung Hươu", "Cá Sông Đà", "Miến Dong"]

# canonical sector -> (weight, activity words for names, spellings as districts write them)
SECTORS: dict[str, tuple[float, list[str], list[str]]] = {
    "agriculture": (0.64, ["Nông nghiệp", "Dịch vụ nông nghiệp", "Chăn nuôi", "Trồng trọt", "Nông lâm nghiệp"],
                    ["Nông nghiệp", "nông nghiệp", "Nông, lâm, ngư nghiệp", "Nông lâm nghiệp", "NÔNG NGHIỆP", "Nong nghiep"]),
    "handicraft": (0.07, ["Dệt thổ cẩm", "Mây tre đan", "Chế biến nông sản"],
                   ["Tiểu thủ công nghiệp", "TTCN", "Công nghiệp - TTCN", "Công nghiệp-TTCN", "Công nghiệp, tiểu thủ công nghiệp"]),
    "transport": (0.05, ["Vận tải", "Vận tải hành khách"], ["Vận tải", "Giao thông vận tải", "vận tải"]),
    "tourism": (0.03, ["Du lịch cộng đồng", "Du lịch"], ["Du lịch", "du lịch"]),
    "trade_services": (0.08, ["Thương mại dịch vụ", "Dịch vụ tổng hợp"],
                       ["Thương mại - dịch vụ", "TM-DV", "Dịch vụ", "Thương mại", "TM - DV", "Thương mại-Dịch vụ"]),
    "construction": (0.04, ["Xây dựng"], ["Xây dựng", "XÂY DỰNG"]),
    "electricity": (0.025, ["Điện năng", "Dịch vụ điện"], ["Điện năng", "Điện"]),
    "market": (0.02, ["Quản lý chợ"], ["Chợ", "Quản lý chợ"]),
    "environment": (0.03, ["Vệ sinh môi trường", "Môi trường"], ["Vệ sinh môi trường", "Môi trường"]),
    "other": (0.025, ["Tổng hợp"], ["Khác", "khác"]),
}
CREDIT_SPELL = ["Quỹ tín dụng nhân dân", "QTDND"]
SECTOR_SECTION = {
    "agriculture": "Lĩnh vực nông nghiệp", "handicraft": "Lĩnh vực công nghiệp - TTCN",
    "transport": "Lĩnh vực vận tải", "tourism": "Lĩnh vực du lịch", "trade_services": "Lĩnh vực thương mại - dịch vụ",
    "construction": "Lĩnh vực xây dựng", "electricity": "Lĩnh vực điện năng", "market": "Lĩnh vực quản lý chợ",
    "credit_fund": "Quỹ tín dụng nhân dân", "environment": "Lĩnh vực môi trường", "other": "Lĩnh vực khác",
}
SECTOR_ORDER = list(SECTOR_SECTION)
STATUS_SPELL = {
    "active": ["Đang hoạt động", "Hoạt động", "đang hoạt động", "Đang hoạt động", "Dang hoat dong"],
    "suspended": ["Ngừng hoạt động", "Tạm ngừng hoạt động", "Tạm ngừng", "Chờ giải thể"],
    "dissolved": ["Giải thể", "Đã giải thể"],
}
KIND_SPELL = {"htx": ["HTX", "Hợp tác xã", "HTX", ""], "union": ["Liên hiệp HTX", "LH HTX", "Liên hiệp hợp tác xã"]}
RATING_SPELL = {"good": ["Tốt"], "fair": ["Khá"], "average": ["Trung bình"], "weak": ["Yếu", "Yếu kém"]}
SUPPORT_SPELL = {
    "establishment": ["Thành lập mới", "Hỗ trợ thành lập mới", "Thành lập"],
    "training": ["Đào tạo", "Bồi dưỡng", "Đào tạo, bồi dưỡng"],
    "trade_promotion": ["Xúc tiến thương mại", "XTTM"],
    "technology": ["Ứng dụng khoa học công nghệ", "KHCN"],
    "infrastructure": ["Kết cấu hạ tầng", "Hạ tầng"],
    "credit": ["Tín dụng", "Vốn vay"],
    "other": ["Khác"],
}
YES = ["x", "X", "có", "Có", "1", 1]
NO = [None, None, None, "không", "0", 0]

HEADERS: dict[str, dict[str, list[str]]] = {
    "HTX": {
        "reg_code": ["Mã số HTX", "Mã số thuế", "MST", "Mã số doanh nghiệp", "Số đăng ký", "Mã số"],
        "name": ["Tên HTX", "Tên hợp tác xã", "Tên đơn vị", "Tên HTX, liên hiệp HTX"],
        "commune": ["Xã", "Xã/phường/thị trấn", "Địa chỉ", "Địa bàn"],
        "kind": ["Loại hình"],
        "established_on": ["Ngày thành lập", "Ngày đăng ký", "Ngày cấp GCN ĐKHTX", "Ngày cấp đăng ký"],
        "sector": ["Lĩnh vực", "Lĩnh vực hoạt động", "Ngành nghề"],
        "status": ["Tình trạng", "Tình trạng hoạt động", "Trạng thái"],
        "members": ["Số thành viên", "Thành viên"],
        "workers": ["Số lao động", "Lao động", "Số lao động thường xuyên"],
        "revenue": ["Doanh thu", "Tổng doanh thu"],
        "profit": ["Lợi nhuận", "Lãi", "Lợi nhuận trước thuế"],
        "income": ["Thu nhập bình quân", "Thu nhập BQ", "Thu nhập bình quân người lao động"],
        "rating": ["Xếp loại", "Phân loại", "Đánh giá"],
        "ocop_stars": ["OCOP", "Sản phẩm OCOP", "Số sao OCOP"],
        "high_tech": ["Ứng dụng công nghệ cao", "UDCNC", "HTX điển hình, ứng dụng CNC"],
    },
    "THT": {
        "name": ["Tên THT", "Tên tổ hợp tác"],
        "commune": ["Xã", "Xã/phường/thị trấn", "Địa bàn"],
        "established_on": ["Ngày thành lập", "Ngày chứng thực hợp đồng"],
        "sector": ["Lĩnh vực", "Lĩnh vực hoạt động", "Ngành nghề"],
        "status": ["Tình trạng", "Tình trạng hoạt động", "Trạng thái"],
        "members": ["Số thành viên", "Thành viên"],
        "workers": ["Số lao động", "Lao động"],
        "revenue": ["Doanh thu", "Tổng doanh thu"],
        "profit": ["Lợi nhuận", "Lãi"],
        "income": ["Thu nhập bình quân", "Thu nhập BQ"],
    },
    "HO_TRO": {
        "reg_code": ["Mã số HTX", "Mã số thuế", "MST", "Mã số"],
        "support_type": ["Nội dung hỗ trợ", "Loại hỗ trợ", "Hình thức hỗ trợ"],
        "amount": ["Số tiền", "Kinh phí", "Kinh phí hỗ trợ"],
        "participants": ["Số lượt", "Số lượt người", "Số người tham gia"],
        "decision_no": ["Số quyết định", "Số QĐ"],
        "allocated_on": ["Ngày quyết định", "Ngày bố trí", "Ngày cấp"],
    },
    "CHI_TIEU": {
        "code": ["Mã chỉ tiêu", "Mã"],
        "label": ["Chỉ tiêu", "Nội dung"],
        "unit": ["Đơn vị tính", "ĐVT", "Đơn vị"],
        "target": ["Kế hoạch", "Chỉ tiêu kế hoạch", "KH"],
    },
}
UNITS = {
    "members": ["(người)", "(thành viên)"], "workers": ["(người)"],
    "revenue": ["(triệu đồng)", "(tr.đ)", "(triệu đồng/năm)"], "profit": ["(triệu đồng)", "(tr.đ)"],
    "income": ["(triệu đồng/người/tháng)", "(tr.đ/người/tháng)"], "amount": ["(triệu đồng)"],
    "participants": ["(lượt)"], "established_on": ["(dd/mm/yyyy)"], "allocated_on": ["(ngày/tháng/năm)"],
}
EXTRA_COLUMNS = ["Ghi chú", "Người đại diện", "Số điện thoại", "Ngành nghề phụ", "Vốn điều lệ (triệu đồng)"]

# Columns of each form in the truth, in order (lineage first).
LINEAGE = ["year", "district_code", "source_file", "sheet", "row_number"]
# The reporting unit across the 2025 reform (every form) and the commune of a register row (HTX, THT):
# appended after the form's columns, so a row of 2018-2021 is its old row plus these.
UNIT_COLUMNS = ["unit_code", "unit_level", "area_code"]
COMMUNE_COLUMNS = ["old_commune_code", "commune_code", "approximate"]
FORM_COLUMNS = {
    "HTX": ["reg_code", "name", "commune", "kind", "established_on", "sector", "status", "members", "workers",
            "revenue", "profit", "income", "rating", "ocop_stars", "high_tech"],
    "THT": ["name", "commune", "established_on", "sector", "status", "members", "workers", "revenue", "profit", "income"],
    "HO_TRO": ["reg_code", "support_type", "amount", "participants", "decision_no", "allocated_on"],
    "CHI_TIEU": ["code", "label", "unit", "target_raw", "target_min", "target_max"],
}

# Calibration targets per year (sums are multiplied by the scale).
HTX_COUNTS = {  # new, active target, exits to suspended, direct dissolutions, reactivations
    2019: (58, 385, 28, 12, 2), 2020: (66, 422, 20, 10, 2), 2021: (48, 454, 10, 8, 2)}
THT_COUNTS = {2019: (19, 196, 8, 6, 1), 2020: (20, 203, 8, 6, 1), 2021: (12, 211, 3, 2, 1)}
TARGETS = {  # members sum, avg revenue, avg profit, weighted income (million VND)
    ("HTX", 2018): (11600, 2950, 360, 3.60), ("HTX", 2019): (12050, 3100, 385, 3.80),
    ("HTX", 2020): (12700, 3240, 401, 4.00), ("HTX", 2021): (13400, 2230, 250, 4.16),
    ("THT", 2018): (2820, 520, 45, 1.25), ("THT", 2019): (2905, 560, 49, 1.32),
    ("THT", 2020): (3046, 581, 52, 1.40), ("THT", 2021): (3180, 220.14, 56.5, 1.46),
}
HIGH_TECH = {2018: 9, 2019: 12, 2020: 16, 2021: 22}
TRAINING = {2018: 350, 2019: 380, 2020: 470, 2021: 430}
BACKLOG_2020 = 119
PLANS = {
    2019: [("new_htx", "Thành lập mới HTX, liên hiệp HTX", "HTX", 50), ("new_tht", "Thành lập mới tổ hợp tác", "THT", 20),
           ("htx_revenue_growth_pct", "Doanh thu bình quân 1 HTX tăng", "%", 5),
           ("htx_income_growth_pct", "Thu nhập bình quân của lao động tăng", "%", "3-5%"),
           ("training_turns", "Bồi dưỡng cán bộ, thành viên HTX", "lượt người", 350),
           ("high_tech_htx", "HTX ứng dụng công nghệ cao", "HTX", 10)],
    2020: [("new_htx", "Thành lập mới HTX, liên hiệp HTX", "HTX", 60), ("new_tht", "Thành lập mới tổ hợp tác", "THT", 15),
           ("htx_revenue_growth_pct", "Doanh thu bình quân 1 HTX tăng", "%", "5 - 7"),
           ("htx_income_growth_pct", "Thu nhập bình quân của lao động tăng", "%", "từ 3"),
           ("training_turns", "Bồi dưỡng cán bộ, thành viên HTX", "lượt người", 400),
           ("high_tech_htx", "HTX ứng dụng công nghệ cao", "HTX", 15)],
    2021: [("new_htx", "Thành lập mới HTX, liên hiệp HTX", "HTX", "từ 65"), ("new_tht", "Thành lập mới tổ hợp tác", "THT", 15),
           ("htx_revenue_growth_pct", "Doanh thu bình quân 1 HTX tăng", "%", "6 - 8"),
           ("htx_income_growth_pct", "Thu nhập bình quân của lao động tăng", "%", "3 - 5"),
           ("training_turns", "Bồi dưỡng cán bộ, thành viên HTX", "lượt người", 500),
           ("high_tech_htx", "Mô hình HTX điển hình tiên tiến, ứng dụng công nghệ cao", "mô hình", 20)],
}

# Folder name per (year, district): the variants the contract accepts.
FOLDERS: dict[str, list[str]] = {
    "148": ["TP Hoà Bình", "thanh-pho-hoa-binh", "148", "Thành phố Hòa Bình"],
    "150": ["Đà Bắc", "da-bac", "Huyen Da Bac", "150"],
    "151": ["Kỳ Sơn", "ky_son", None, "Kỳ Sơn"],
    "152": ["luong-son", "NFD:Lương Sơn", "152", "Huyện Lương Sơn"],
    "153": ["Kim Bôi", "kim-boi", "Huyện Kim Bôi", "153"],
    "154": ["cao-phong", "154", "Cao Phong", "Huyen Cao Phong"],
    "155": ["Tân Lạc", "155", "tan_lac", "Huyện Tân Lạc"],
    "156": ["156", "Mai Châu", "mai-chau", "Huyen Mai Chau"],
    "157": ["lac-son", "Lạc Sơn", "157", "Huyen Lac Son"],
    "158": ["Huyen Yen Thuy", "Yên Thuỷ", "yen_thuy", "158"],
    "159": ["Lạc Thủy", "lac-thuy", "Huyện Lạc Thuỷ", "159"],
}
PROVINCE_FOLDERS = {2019: "province", 2020: "tinh", 2021: "province"}
EXCEL_EPOCH = date(1899, 12, 30)
ZIP_TIME = (2021, 1, 15, 8, 0, 0)


class Err(str):
    """An Excel error value written as a formula with a cached error (#N/A...)."""


# ----------------------------------------------------------------------------- truth


def truth_columns(form: str) -> list[str]:
    """Columns of a form in ground_truth.json: lineage, the form's columns, the unit (and commune) columns."""
    return LINEAGE + FORM_COLUMNS[form] + UNIT_COLUMNS + (COMMUNE_COLUMNS if form in ("HTX", "THT") else [])


@dataclass
class Truth:
    seed: int
    scale: int
    forms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # valid rows per form
    invalid_rows: list[dict[str, Any]] = field(default_factory=list)
    rejected_files: list[dict[str, Any]] = field(default_factory=list)
    ignored_sheets: list[dict[str, Any]] = field(default_factory=list)
    rejected_sheets: list[dict[str, Any]] = field(default_factory=list)     # a sheet refused, the file read
    superseded: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Compact, diff-friendly JSON: per form a column list and one array per row."""
        out = ['{', f'"seed": {self.seed}, "scale": {self.scale},', '"forms": {']
        names = list(self.forms)
        for i, form in enumerate(names):
            cols = truth_columns(form)
            out.append(f'{json.dumps(form)}: {{"columns": {json.dumps(cols)}, "rows": [')
            rows = self.forms[form]
            for j, r in enumerate(rows):
                out.append(json.dumps([r.get(c) for c in cols], ensure_ascii=False) + ("," if j < len(rows) - 1 else ""))
            out.append("]}" + ("," if i < len(names) - 1 else ""))
        out.append("},")
        for key in ("invalid_rows", "rejected_files", "rejected_sheets", "ignored_sheets", "superseded"):
            out.append(f'"{key}": [')
            items = getattr(self, key)
            for j, r in enumerate(items):
                out.append(json.dumps(r, ensure_ascii=False) + ("," if j < len(items) - 1 else ""))
            out.append("],")
        out.append('"files": ' + json.dumps(self.files, ensure_ascii=False))
        out.append("}")
        return "\n".join(out) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Truth":
        d = json.loads(text)
        forms = {f: [dict(zip(v["columns"], row)) for row in v["rows"]] for f, v in d["forms"].items()}
        return cls(seed=d["seed"], scale=d["scale"], forms=forms, invalid_rows=d["invalid_rows"],
                   rejected_files=d["rejected_files"], ignored_sheets=d["ignored_sheets"],
                   rejected_sheets=d.get("rejected_sheets", []),
                   superseded=d["superseded"], files=d["files"])


# ----------------------------------------------------------------------------- entities


@dataclass
class Ent:
    uid: int
    etype: str                      # HTX | THT
    home: str                       # district code at creation
    reg_code: str | None
    name: str
    commune: str
    kind: str                       # htx | union
    established_on: date
    sector: str
    base_members: float
    base_revenue: float
    margin: float
    base_income: float
    worker_ratio: float
    tech: float                     # propensity to apply high technology
    ocop_from: int | None           # year from which it has an OCOP product
    ocop_stars: int | None
    status: dict[int, str] = field(default_factory=dict)
    old_commune: str | None = None  # former commune (GSO code) it is registered in, district era from 2022
    today: str | None = None        # commune of today that registers it from 2025
    area: str = "17"                # former province

    def district(self, year: int) -> str:
        return "148" if self.home == "151" and year >= 2020 else self.home

    def unit(self, year: int) -> str:
        """The reporting unit whose register holds it in `year`: district until 2024, commune from 2025."""
        return self.today if year >= REFORM_YEAR else self.district(year)  # type: ignore[return-value]


@functools.lru_cache(maxsize=1 << 16)
def fold(s: str) -> str:
    s = unicodedata.normalize("NFD", s.replace("đ", "d").replace("Đ", "D"))
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    return " ".join(s.lower().split())


class Population:
    """HTX and THT over the years: creation, suspensions, dissolutions, reactivations."""

    def __init__(self, rng: random.Random, scale: int):
        self.rng = rng
        self.scale = scale
        self.ents: list[Ent] = []
        self.codes: set[str] = set()
        self.tht_keys: set[tuple[str, str, str]] = set()
        self.htx_names: set[tuple[str, str]] = set()

    # districts valid for creating a new entity in `year`
    def pick_district(self, year: int) -> str:
        ds = [(c, w) for c, _, w, last in DISTRICTS if last is None or year <= last]
        return self.rng.choices([c for c, _ in ds], weights=[w for _, w in ds])[0]

    def new_code(self, prefix: str | None = None) -> str:
        r = self.rng
        while prefix is not None:                  # a province's tax-code prefix (reform years, other provinces)
            code = prefix + f"{r.randrange(100000, 999999)}"
            if r.random() < 0.06:
                code += "-00" + str(r.randrange(1, 4))
            if code not in self.codes:
                self.codes.add(code)
                return code
        while True:
            u = r.random()
            if u < 0.84:
                code = "5400" + f"{r.randrange(100000, 999999)}"
            elif u < 0.95:
                code = "0" + f"{r.randrange(500000000, 599999999)}"     # old registration number, leading zero
            else:
                code = "5400" + f"{r.randrange(100000, 999999)}" + "-00" + str(r.randrange(1, 4))
            if code not in self.codes:
                self.codes.add(code)
                return code

    def sector(self, credit: bool = False) -> str:
        if credit:
            return "credit_fund"
        names = list(SECTORS)
        return self.rng.choices(names, weights=[SECTORS[s][0] for s in names])[0]

    def make(self, etype: str, year_est: date, district: str, *, sector: str | None = None, union: bool | None = None,
             commune: str | None = None, words: list[str] | None = None, code_prefix: str | None = None) -> Ent:
        """`district` is the unit whose register holds it (a commune code from 2025); `commune` its commune
        name (default: one of COMMUNES[district]), `words` name words, `code_prefix` see new_code."""
        r = self.rng
        sector = sector or self.sector()
        commune = commune if commune is not None else r.choice(COMMUNES[district])
        if etype == "HTX":
            kind = "union" if (union if union is not None else r.random() < 0.08) else "htx"
            tries = 0
            while True:
                if sector == "credit_fund":
                    name = f"Quỹ tín dụng nhân dân {commune.split(' ', 1)[1] if ' ' in commune else commune}"
                    name = name.replace("Trấn ", "").replace("trấn ", "")
                else:
                    act = r.choice(SECTORS[sector][1])
                    word = r.choice(words or HTX_WORDS)
                    prefix = "Liên hiệp HTX" if kind == "union" else r.choice(["HTX", "HTX", "Hợp tác xã"])
                    name = f"{prefix} {act} {word}"
                    if r.random() < 0.5:
                        name += " " + commune.split(" ", 1)[1].replace("trấn ", "")
                tries += 1
                if tries > 40:
                    name += f" {tries - 39}"
                key = (district, fold(name))
                if key not in self.htx_names:
                    self.htx_names.add(key)
                    break
            code = self.new_code(code_prefix)
            if sector == "credit_fund":
                members = r.uniform(150, 320)
                revenue = r.uniform(6000, 12000)
            elif kind == "union":
                members = r.uniform(3, 9)
                revenue = r.lognormvariate(math.log(4000), 0.6)
            else:
                members = r.lognormvariate(math.log(24), 0.55)
                revenue = r.lognormvariate(math.log(2000), 0.9)
            income = r.gauss(1.0, 0.18)
            wr = r.uniform(0.4, 1.1) if kind != "union" else r.uniform(2, 5)
        else:
            kind = "htx"
            code = None
            tries = 0
            while True:
                act = r.choice(SECTORS[sector][1])
                name = f"Tổ hợp tác {act.lower()} {r.choice(VILLAGES)}"
                tries += 1
                if tries > 40:
                    name += f" {tries - 39}"
                key = (district, fold(commune), fold(name))
                if key not in self.tht_keys:
                    self.tht_keys.add(key)
                    break
            members = r.lognormvariate(math.log(13), 0.4)
            revenue = r.lognormvariate(math.log(450), 0.8)
            income = r.gauss(1.0, 0.2)
            wr = r.uniform(0.5, 1.0)
        e = Ent(uid=len(self.ents), etype=etype, home=district, reg_code=code, name=name, commune=commune, kind=kind,
                established_on=year_est, sector=sector, base_members=members, base_revenue=revenue,
                margin=r.uniform(0.02, 0.22) if r.random() > 0.08 else r.uniform(-0.15, 0.0),
                base_income=max(0.4, income), worker_ratio=wr, tech=r.random(),
                ocop_from=r.choice([2018, 2019, 2019, 2020, 2020, 2021, 2021]) if (etype == "HTX" and sector == "agriculture" and r.random() < 0.12) else None,
                ocop_stars=r.choice([3, 3, 3, 4, 4, 5]))
        self.ents.append(e)
        return e

    def rand_date(self, y0: int, y1: int) -> date:
        a, b = date(y0, 1, 1), date(y1, 12, 31)
        return a + timedelta(days=self.rng.randrange((b - a).days + 1))

    def simulate(self, etype: str, first: tuple[int, int, int, int], counts: dict[int, tuple[int, int, int, int, int]],
                 credit_funds: int = 0) -> None:
        """first = (new 2018, active 2018, suspended 2018, dissolved 2018) at scale 1."""
        k, r = self.scale, self.rng
        new18, act18, sus18, dis18 = (x * k for x in first)
        pre = act18 + sus18 + dis18 - new18
        olds = []
        for i in range(pre):
            e = self.make(etype, self.rand_date(1997 if etype == "HTX" else 2005, 2017), self.pick_district(2017),
                          sector="credit_fund" if i < credit_funds else None, union=False if i < credit_funds else None)
            olds.append(e)
        news = [self.make(etype, self.rand_date(2018, 2018), self.pick_district(2018)) for _ in range(new18)]
        everyone = olds + news
        movable = [e for e in olds if e.sector != "credit_fund"]
        r.shuffle(movable)
        for e in everyone:
            e.status[2018] = "active"
        for e in movable[:sus18]:
            e.status[2018] = "suspended"
        for e in movable[sus18:sus18 + dis18]:
            e.status[2018] = "dissolved"
        for year in YEARS[1:]:
            n_new, _target, x, d, re = (v * k for v in counts[year])
            prev = [e for e in self.ents if e.etype == etype and year - 1 in e.status]
            act = [e for e in prev if e.status[year - 1] == "active"]
            sus = [e for e in prev if e.status[year - 1] == "suspended"]
            for e in act:
                e.status[year] = "active"
            for e in sus:
                e.status[year] = "suspended"
            cand = [e for e in act if e.sector != "credit_fund"]
            r.shuffle(cand)
            for e in cand[:x]:
                e.status[year] = "suspended"
            for e in cand[x:x + d]:
                e.status[year] = "dissolved"
            r.shuffle(sus)
            for e in sus[:re]:
                e.status[year] = "active"
            for e in sus[re:re + 2 * k]:
                e.status[year] = "dissolved"
            for i in range(n_new):
                e = self.make(etype, self.rand_date(year, year), self.pick_district(year))
                # 2020: one new HTX already suspended at year end (still counts as newly formed)
                e.status[year] = "suspended" if (etype == "HTX" and year == 2020 and i < k) else "active"

    def register(self, etype: str, year: int) -> list[Ent]:
        return [e for e in self.ents if e.etype == etype and year in e.status]


# ----------------------------------------------------------------------------- layouts


@dataclass
class Layout:
    form: str
    columns: list[str]                    # canonical columns written, in order
    headers: dict[str, str]               # canonical -> header text
    title: list[str] = field(default_factory=list)
    header2: bool = False                 # two-row header with a merged group title
    colnum: str | None = None             # "paren" | "plain"
    sections: str | None = None           # "roman" | "alpha"
    total: str | None = None              # "Tổng cộng" | "Cộng"
    signature: bool = False
    row0: int = 0                         # first used row (0-based) -> used range offset
    col0: int = 0
    numbers: str = "numeric"              # numeric | text | mixed
    dates: str = "date"                   # date | serial | text | mixed
    codes: str = "text"                   # text | numeric | mixed
    stt: bool = True
    extra: list[tuple[int, str]] = field(default_factory=list)   # (position, header) unknown columns
    blank_rows: bool = False
    messy_text: bool = False              # extra spaces around names


def strip_accents(s: str) -> str:
    s = unicodedata.normalize("NFD", s.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(ch for ch in s if not unicodedata.combining(ch)))


def make_layout(rng: random.Random, form: str, style: str, optional: dict[str, bool]) -> Layout:
    """style: official | official_b | plain | noaccent | offset | csv."""
    base = {
        "HTX": ["reg_code", "name", "commune", "kind", "established_on", "sector", "status", "members", "workers",
                "revenue", "profit", "income", "rating", "ocop_stars", "high_tech"],
        "THT": ["name", "commune", "established_on", "sector", "status", "members", "workers", "revenue", "profit", "income"],
        "HO_TRO": ["reg_code", "support_type", "amount", "participants", "decision_no", "allocated_on"],
        "CHI_TIEU": ["label", "code", "unit", "target"],
    }[form]
    cols = [c for c in base if optional.get(c, True)]
    if style in ("noaccent", "offset", "csv") and form in ("HTX", "THT"):
        # free column order: move a few columns around
        cols = cols[:]
        for _ in range(2):
            i, j = rng.sample(range(len(cols)), 2)
            cols[i], cols[j] = cols[j], cols[i]
    headers = {}
    for c in cols:
        h = rng.choice(HEADERS[form][c])
        if style in ("official_b", "offset") and c in UNITS and rng.random() < 0.8:
            h = f"{h} {rng.choice(UNITS[c])}"
        if style in ("official", "official_b") and len(h) > 14 and " " in h and rng.random() < 0.5:
            i = h.index(" ", len(h) // 2 - 3) if " " in h[len(h) // 2 - 3:] else h.index(" ")
            h = h[:i] + "\n" + h[i + 1:]
        if style == "noaccent":
            h = strip_accents(h)
            if rng.random() < 0.5:
                h = h.upper()
            if " " in h and rng.random() < 0.3:
                h = h.replace(" ", "  ", 1) + " "          # repeated and trailing spaces
        headers[c] = h
    lay = Layout(form=form, columns=cols, headers=headers)
    if style == "official":
        lay.title = ["official"]
        lay.header2 = form in ("HTX", "THT") and all(c in cols for c in ("revenue", "profit"))
        lay.colnum = "paren"
        lay.sections = "roman" if form in ("HTX", "THT") else None
        lay.total = "Tổng cộng"
        lay.signature = True
        lay.numbers, lay.dates, lay.codes = "numeric", "date", "text"
    elif style == "official_b":
        lay.title = ["official"]
        lay.colnum = "plain"
        lay.sections = "alpha" if form in ("HTX", "THT") else None
        lay.total = "Cộng"
        lay.signature = True
        lay.numbers, lay.dates, lay.codes = "mixed", "serial", "mixed"
    elif style == "plain":
        lay.stt = rng.random() < 0.5
        lay.numbers, lay.dates, lay.codes = "numeric", "mixed", "numeric"
    elif style == "noaccent":
        lay.title = ["short"]
        lay.numbers, lay.dates, lay.codes = "text", "text", "text"
        lay.messy_text = True
    elif style == "offset":
        lay.row0, lay.col0 = rng.choice([(2, 1), (3, 2), (4, 1)])
        lay.numbers, lay.dates, lay.codes = "mixed", "mixed", "mixed"
        lay.blank_rows = True
        lay.extra = [(rng.randrange(1, len(cols)), rng.choice(EXTRA_COLUMNS)), (len(cols) + 1, "Ghi chú")]
    elif style == "csv":
        lay.numbers, lay.dates, lay.codes = "text", "text", "text"
        lay.stt = rng.random() < 0.5
        lay.messy_text = True
    if style in ("plain", "noaccent", "csv") and rng.random() < 0.5 and form in ("HTX", "THT"):
        lay.extra = [(len(cols), rng.choice(EXTRA_COLUMNS))]
    if form == "HO_TRO" and rng.random() < 0.6:
        # support lists usually name the cooperative too: an unknown column for this form
        lay.extra = [(1, rng.choice(["Tên HTX", "Tên hợp tác xã", "Tên đơn vị được hỗ trợ"]))] + lay.extra
    return lay


# ----------------------------------------------------------------------------- rows


@dataclass
class WRow:
    """A row to write: canonical values plus optional raw overrides (planted errors)."""
    form: str
    values: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict)          # canonical column -> raw cell (error)
    expect: list[tuple[str, str]] = field(default_factory=list)  # (column, reason_code) when invalid
    valid: bool = True
    counted: bool = True                                        # False: rejected/superseded file
    row_number: int | None = None
    old_commune: str | None = None                              # the former commune meant (district era from 2022)
    commune_set: bool = False                                   # old_commune is planned (else: matched by name)


def vn_number(v: float | int, rng: random.Random, dot_decimal: bool = False) -> str:
    """A number as a Vietnamese clerk types it: `3.240`, `12 700`, `1,4`, `1.234,5` (or `4.2`)."""
    neg = v < 0
    v = abs(v)
    cents = round(v * 100)
    ip, fp = divmod(cents, 100)
    sep = " " if (ip >= 10000 and rng.random() < 0.3) else "."
    s = f"{ip:,}".replace(",", sep)
    if fp:
        dec = f"{fp:02d}".rstrip("0")
        if dot_decimal and ip < 1000:
            s = f"{ip}.{dec}"
        else:
            s = f"{s},{dec}"
    return ("-" if neg else "") + s


def plain_number(v: float | int) -> int | float:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def fmt_date_text(d: date, rng: random.Random) -> str:
    f = rng.choice(["%d/%m/%Y", "%d/%m/%Y", "dmy", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d"])
    if f == "dmy":
        return f"{d.day}/{d.month}/{d.year}"
    return d.strftime(f)


class CellMaker:
    """Turns canonical values into the cells a clerk would type, per layout."""

    def __init__(self, rng: random.Random, lay: Layout, csv_mode: bool):
        self.rng, self.lay, self.csv = rng, lay, csv_mode

    def number(self, v: Any, col: str) -> Any:
        if v is None:
            return self.rng.choice([None, None, "-", "–"]) if self.lay.numbers != "numeric" or self.csv else None
        mode = self.lay.numbers
        if mode == "mixed":
            mode = self.rng.choice(["numeric", "numeric", "text"])
        if self.csv or mode == "text":
            return vn_number(v, self.rng, dot_decimal=(col == "income" and self.rng.random() < 0.3))
        return plain_number(v)

    def date(self, d: date) -> Any:
        mode = self.lay.dates
        if mode == "mixed":
            mode = self.rng.choice(["date", "serial", "text"])
        if self.csv or mode == "text":
            return fmt_date_text(d, self.rng)
        if mode == "serial":
            return (d - EXCEL_EPOCH).days
        return d

    def code(self, c: str) -> Any:
        mode = self.lay.codes
        if mode == "mixed":
            mode = self.rng.choice(["text", "numeric"])
        if mode == "numeric" and c.isdigit() and not c.startswith("0") and not self.csv:
            return int(c)
        u = self.rng.random()
        if c.startswith("0") and u < 0.4:
            return "'" + c
        if u > 0.93 and c.isdigit():
            return f"{c[:4]} {c[4:7]} {c[7:]}"
        return c

    def text(self, s: str | None) -> Any:
        if s is None:
            return None
        if self.lay.messy_text and self.rng.random() < 0.15:
            return "  " + s.replace(" ", "  ", 1) + " "
        return s

    def cell(self, col: str, v: Any) -> Any:
        form = self.lay.form
        if col in ("reg_code",):
            return None if v is None else self.code(v)
        if col in ("name", "commune", "label", "decision_no", "unit"):
            return self.text(v)
        if col in ("established_on", "allocated_on"):
            return self.date(v)
        if col in ("members", "workers", "revenue", "profit", "income", "amount", "participants"):
            return self.number(v, col)
        if col == "sector":
            return self.rng.choice(CREDIT_SPELL if v == "credit_fund" else SECTORS[v][2])
        if col == "status":
            return self.rng.choice(STATUS_SPELL[v])
        if col == "kind":
            return self.rng.choice(KIND_SPELL[v]) or None
        if col == "rating":
            return None if v is None else self.rng.choice(RATING_SPELL[v])
        if col == "ocop_stars":
            if v is None:
                return None
            return self.rng.choice([v, v, f"{v} sao", f"{v}*"]) if not self.csv else self.rng.choice([str(v), f"{v} sao"])
        if col == "high_tech":
            c = self.rng.choice(YES) if v else self.rng.choice(NO)
            return str(c) if (self.csv and c is not None) else c
        if col == "support_type":
            return self.rng.choice(SUPPORT_SPELL[v])
        if col == "code":
            return v
        if col == "target":
            return v if not self.csv else str(v)
        raise KeyError((form, col))


@dataclass
class Grid:
    name: str
    rows: list[list[Any]]
    merges: list[tuple[int, int, int, int]] = field(default_factory=list)   # grid coords r1,c1,r2,c2
    row0: int = 0
    col0: int = 0
    hidden: bool = False


def title_lines(lay: Layout, year: int, district: str | None) -> list[str]:
    what = {"HTX": "DANH SÁCH HỢP TÁC XÃ, LIÊN HIỆP HỢP TÁC XÃ", "THT": "DANH SÁCH TỔ HỢP TÁC",
            "HO_TRO": "TỔNG HỢP KINH PHÍ HỖ TRỢ HỢP TÁC XÃ", "CHI_TIEU": "KẾ HOẠCH PHÁT TRIỂN KINH TẾ TẬP THỂ"}[lay.form]
    dname = DISTRICT_NAME.get(district or "", "")
    if district is None:
        unit = "UBND TỈNH HÒA BÌNH" if year < REFORM_YEAR else "UBND TỈNH PHÚ THỌ"
    elif district in DISTRICT_NAME:
        unit = f"UBND {'THÀNH PHỐ' if district == '148' else 'HUYỆN'} {dname.replace('Thành phố ', '').upper()}"
    else:
        unit = "UBND " + load_ref().unit_title(district).upper()
    if lay.title == ["short"]:
        return [f"{strip_accents(what)} NAM {year}"]
    lines = [unit, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "", f"{what} NĂM {year}"]
    if lay.form in ("HTX", "THT"):
        lines.append(f"(Số liệu tính đến ngày 31/12/{year})")
    lines.append("Đơn vị tính: triệu đồng")
    return lines


def build_grid(lay: Layout, rows: list[WRow], cm: CellMaker, year: int, district: str | None, sheet: str) -> Grid:
    """Lay the rows out as a clerk would; records each data row's Excel row number in WRow.row_number."""
    rng = cm.rng
    cols: list[str | None] = list(lay.columns)
    heads: list[str] = [lay.headers[c] for c in cols]
    for pos, h in sorted(lay.extra):
        pos = min(pos, len(cols))
        cols.insert(pos, None)
        heads.insert(pos, h)
    if lay.stt:
        cols.insert(0, "__stt")
        heads.insert(0, "STT" if rng.random() < 0.8 else "TT")
    ncol = len(cols)
    grid: list[list[Any]] = []
    merges: list[tuple[int, int, int, int]] = []

    def blank() -> list[Any]:
        return [None] * ncol

    for line in (title_lines(lay, year, district) if lay.title else []):
        r = blank()
        r[0] = line or None
        grid.append(r)
    if lay.title and lay.title != ["short"]:
        grid.append(blank())
    # header
    if lay.header2:
        top, bottom = blank(), blank()
        group = [i for i, c in enumerate(cols) if c in ("revenue", "profit", "income")]
        g0, g1 = min(group), max(group)
        contiguous = group == list(range(g0, g1 + 1))
        hr = len(grid)
        for i, h in enumerate(heads):
            if contiguous and g0 <= i <= g1:
                bottom[i] = h
            else:
                top[i] = h
                merges.append((hr, i, hr + 1, i))
        if contiguous:
            top[g0] = "Kết quả sản xuất kinh doanh"
            if g1 > g0:
                merges.append((hr, g0, hr, g1))
        grid += [top, bottom]
    else:
        grid.append(list(heads))
    if lay.colnum:
        grid.append([f"({i + 1})" if lay.colnum == "paren" else i + 1 for i in range(ncol)])
    elif lay.blank_rows:
        grid.append(blank())                               # a blank row between header and data
    # data
    order = list(rows)
    if lay.sections:
        order.sort(key=lambda w: SECTOR_ORDER.index(w.values.get("sector", "other")) if w.values.get("sector") in SECTOR_ORDER else 99)
    stt = 0
    sec_i = 0
    cur_sector = object()
    blank_at = rng.randrange(1, max(2, len(order))) if lay.blank_rows and len(order) > 3 else -1
    for k, w in enumerate(order):
        if lay.sections and w.values.get("sector") != cur_sector:
            cur_sector = w.values.get("sector")
            r = blank()
            sec_i += 1
            label = roman(sec_i) if lay.sections == "roman" else chr(ord("A") + sec_i - 1)
            if "__stt" in cols:
                r[0] = label
            r[cols.index("name")] = SECTOR_SECTION.get(cur_sector, "Khác")  # type: ignore[arg-type]
            grid.append(r)
        if k == blank_at:
            grid.append(blank())
        stt += 1
        r = blank()
        for i, c in enumerate(cols):
            if c == "__stt":
                r[i] = stt
            elif c is None:
                if heads[i].startswith("Tên") and w.values.get("htx_name"):
                    r[i] = w.values["htx_name"]
                elif lay.blank_rows and k == 1 and not cm.csv and w.valid:
                    r[i] = Err("#DIV/0!")                  # an error in a column no form uses: harmless
                else:
                    r[i] = rng.choice([None, None, "đã kiểm tra", "0912 345 678", "Nguyễn Văn An"])
            elif c in w.raw:
                r[i] = w.raw[c]
            else:
                r[i] = cm.cell(c, w.values.get(c))
        w.row_number = len(grid) + lay.row0 + 1
        grid.append(r)
    if lay.total:
        r = blank()
        # "Tổng cộng" in the STT column; "Cộng" in the name column (STT left empty)
        label_col = 0 if ("__stt" in cols and lay.total != "Cộng") else cols.index("name") if "name" in cols else 0
        r[label_col] = lay.total
        for i, c in enumerate(cols):
            if c in ("members", "revenue", "amount"):
                vals = [w.values.get(c) for w in rows if w.valid and w.values.get(c) is not None]
                r[i] = round(sum(vals), 2)
        grid.append(r)
    if lay.signature:
        grid.append(blank())
        r = blank()
        place = DISTRICT_NAME.get(district or '', 'Hòa Bình') if district is None or district in DISTRICT_NAME \
            else load_ref().place(district)
        r[-1] = f"{place}, ngày 15 tháng 01 năm {year + 1}"
        grid.append(r)
        r = blank()
        if "__stt" in cols:
            r[0] = "NGƯỜI LẬP BIỂU"
        r[-1] = "TM. ỦY BAN NHÂN DÂN\nCHỦ TỊCH"
        grid.append(r)
    return Grid(name=sheet, rows=grid, merges=merges, row0=lay.row0, col0=lay.col0)


def roman(n: int) -> str:
    vals = [(10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    out = ""
    for v, s in vals:
        while n >= v:
            out += s
            n -= v
    return out


# ----------------------------------------------------------------------------- writers


def write_xlsx(path: Path, grids: list[Grid], in_memory: bool = False) -> None:
    """in_memory (the files of 2022 on): faster, no temporary files; zip entries then carry other
    fixed dates and attributes, which is why the files of 2018-2021 are written without it."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                         "strings_to_urls": False, "in_memory": in_memory})
    wb.set_properties({"created": datetime(2021, 1, 15, 8, 0, 0), "author": "UBND", "title": path.stem})
    f_date = wb.add_format({"num_format": "dd/mm/yyyy"})
    f_head = wb.add_format({"bold": True, "text_wrap": True, "align": "center", "valign": "vcenter", "border": 1})
    f_cell = wb.add_format({"border": 1})
    first_visible = next((i for i, g in enumerate(grids) if not g.hidden), 0)
    for gi, g in enumerate(grids):
        ws = wb.add_worksheet(g.name)
        if g.hidden:
            ws.hide()
        if gi == first_visible:
            ws.activate()
        merged: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        for m in g.merges:
            merged[(m[0], m[1])] = m
        covered = {(r, c) for (r1, c1, r2, c2) in g.merges for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)}
        for ri, row in enumerate(g.rows):
            for ci, v in enumerate(row):
                R, C = ri + g.row0, ci + g.col0
                if (ri, ci) in merged:
                    r1, c1, r2, c2 = merged[(ri, ci)]
                    ws.merge_range(r1 + g.row0, c1 + g.col0, r2 + g.row0, c2 + g.col0, v if v is not None else "", f_head)
                    continue
                if (ri, ci) in covered or v is None:
                    continue
                if isinstance(v, Err):
                    ws.write_formula(R, C, "=NA()" if v == "#N/A" else "=1/0", None, str(v))
                elif isinstance(v, date):
                    ws.write_datetime(R, C, datetime(v.year, v.month, v.day), f_date)
                elif isinstance(v, bool):
                    ws.write_boolean(R, C, v)
                elif isinstance(v, (int, float)):
                    ws.write_number(R, C, v, f_cell)
                else:
                    ws.write_string(R, C, str(v))
        ws.set_column(g.col0, g.col0 + max((len(r) for r in g.rows), default=1), 16)
    wb.close()


def write_xls(path: Path, grids: list[Grid]) -> None:
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    st_date = xlwt.easyxf(num_format_str="DD/MM/YYYY")
    st_head = xlwt.easyxf("font: bold on; align: wrap on, vert centre, horiz centre")
    for g in grids:
        ws = wb.add_sheet(g.name, cell_overwrite_ok=True)
        if g.hidden:
            ws.visibility = 1
        merged = {(m[0], m[1]): m for m in g.merges}
        covered = {(r, c) for (r1, c1, r2, c2) in g.merges for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)}
        for ri, row in enumerate(g.rows):
            for ci, v in enumerate(row):
                R, C = ri + g.row0, ci + g.col0
                if (ri, ci) in merged:
                    r1, c1, r2, c2 = merged[(ri, ci)]
                    ws.write_merge(r1 + g.row0, r2 + g.row0, c1 + g.col0, c2 + g.col0, v, st_head)
                    continue
                if (ri, ci) in covered or v is None:
                    continue
                if isinstance(v, Err):
                    raise ValueError("xls writer: no error cells")
                if isinstance(v, date):
                    ws.write(R, C, datetime(v.year, v.month, v.day), st_date)
                else:
                    ws.write(R, C, v)
    wb.save(str(path))


def write_ods(path: Path, grids: list[Grid]) -> None:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import CoveredTableCell, Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    for g in grids:
        t = Table(name=g.name)
        merged = {(m[0], m[1]): m for m in g.merges}
        covered = {(r, c) for (r1, c1, r2, c2) in g.merges for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)}
        for _ in range(g.row0):
            tr = TableRow()
            tr.addElement(TableCell())
            t.addElement(tr)
        for ri, row in enumerate(g.rows):
            tr = TableRow()
            for _ in range(g.col0):
                tr.addElement(TableCell())
            for ci, v in enumerate(row):
                kw: dict[str, Any] = {}
                if (ri, ci) in merged:
                    r1, c1, r2, c2 = merged[(ri, ci)]
                    kw = {"numberrowsspanned": r2 - r1 + 1, "numbercolumnsspanned": c2 - c1 + 1}
                elif (ri, ci) in covered:
                    tr.addElement(CoveredTableCell())
                    continue
                if v is None:
                    tc = TableCell(**kw)
                elif isinstance(v, Err):
                    raise ValueError("ods writer: no error cells")
                elif isinstance(v, date):
                    tc = TableCell(valuetype="date", datevalue=v.isoformat(), **kw)
                    tc.addElement(P(text=v.strftime("%d/%m/%Y")))
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    tc = TableCell(valuetype="float", value=v, **kw)
                    tc.addElement(P(text=str(v)))
                else:
                    tc = TableCell(valuetype="string", **kw)
                    for part in str(v).split("\n"):
                        tc.addElement(P(text=part))
                tr.addElement(tc)
            t.addElement(tr)
        doc.spreadsheet.addElement(t)
    doc.save(str(path))
    _fix_zip_times(path)


def _fix_zip_times(path: Path) -> None:
    """Rewrite a zip container with fixed entry timestamps (odfpy stamps the wall clock)."""
    src = zipfile.ZipFile(path)
    items = [(i, src.read(i.filename)) for i in src.infolist()]
    src.close()
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in items:
            ni = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            ni.compress_type = info.compress_type
            ni.external_attr = info.external_attr
            if info.filename == "meta.xml":
                data = re.sub(rb"<meta:creation-date>[^<]*</meta:creation-date>", b"", data)
                data = re.sub(rb"<dc:date>[^<]*</dc:date>", b"", data)
            if info.filename.endswith(".xml"):
                data = _canonical_namespaces(data)
            dst.writestr(ni, data)


def _canonical_namespaces(xml: bytes) -> bytes:
    """odfpy declares on the root element every namespace it has met in the process so far:
    keep only the used ones, sorted, so the bytes do not depend on what ran before."""
    m = re.search(rb"<([\w:.-]+)((?:\s+[\w:.-]+=(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>", xml[xml.find(b"<", 1 if xml.startswith(b"<?") else 0):] if not xml.startswith(b"<?") else xml[xml.find(b"?>") + 2:])
    if not m:
        return xml
    start = xml.find(m.group(0))
    attrs = re.findall(rb"([\w:.-]+)=(\"[^\"]*\"|'[^']*')", m.group(2))
    body = xml[start + len(m.group(0)):]
    keep = []
    for name, val in attrs:
        if name.startswith(b"xmlns:"):
            prefix = name[6:]
            if prefix + b":" not in m.group(1) + b" " + b" ".join(n for n, _ in attrs if not n.startswith(b"xmlns")) \
                    and prefix + b":" not in body:
                continue
        keep.append((name, val))
    keep.sort(key=lambda a: (not a[0].startswith(b"xmlns"), a[0]))
    tag = b"<" + m.group(1) + b"".join(b" " + n + b"=" + v for n, v in keep) + (b"/>" if m.group(3) else b">")
    return xml[:start] + tag + body


def write_csv(path: Path, grid: Grid, delimiter: str, bom: bool) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    for row in grid.rows:
        w.writerow(["" if v is None else (v.strftime("%d/%m/%Y") if isinstance(v, date) else str(v)) for v in row])
    data = buf.getvalue().encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


# ----------------------------------------------------------------------------- plans of files


@dataclass
class SheetPlan:
    form: str
    layout: Layout
    name: str
    year: int
    district: str | None                      # the reporting unit: district code, or commune code from 2025
    hidden: bool = False
    rows: list[WRow] = field(default_factory=list)
    counted: bool = True
    rejected: str | None = None               # expected sheet-level reason code (file still read)
    level: str = "district"                   # district | commune | province (the unit's level)
    province: str | None = None               # province folder: the province whose plan it is


@dataclass
class FilePlan:
    rel: str                                  # path relative to the raw folder (POSIX)
    fmt: str                                  # xlsx | xls | ods | csv | bytes
    sheets: list[SheetPlan | Grid] = field(default_factory=list)   # Grid = a sheet without a form
    mtime: datetime = datetime(2021, 1, 15, 8, 0, 0)
    delimiter: str = ";"
    bom: bool = False
    payload: bytes = b""
    rejected: str | None = None               # expected file-level reason code
    superseded_forms: tuple[str, ...] = ()
    wr_seed: str | None = None                # own writer stream (years from 2022), else the shared one


PACKS = ["official", "official_b", "separate", "misleading", "offset", "noaccent_one"]
FIXED_PACKS = {
    (2018, "155"): "csv3", (2021, "154"): "csv1", (2019, "150"): "xls", (2020, "156"): "ods",
    (2020, "159"): "misleading", (2020, "152"): "resubmission", (2021, "157"): "official",
    (2020, "148"): "official", (2019, "153"): "official_b", (2018, "158"): "offset",
    (2018, "157"): "separate", (2019, "157"): "noaccent_one",
    # the years since 2022 (districts, then communes of today)
    (2022, "150"): "csv1", (2022, "157"): "official", (2023, "158"): "xls", (2023, "230"): "csv3",
    (2024, "155"): "ods", (2024, "243"): "official_b", (2025, "05200"): "csv3", (2025, "04924"): "ods",
    (2025, "05266"): "official", (2026, "04795"): "xls", (2026, "05128"): "csv1",
}


def notes_grid(name: str, year: int) -> Grid:
    return Grid(name=name, rows=[["Ghi chú:"], [f"- Số liệu tổng hợp đến hết ngày 31/12/{year}."],
                                 ["- Các HTX chưa nộp báo cáo tài chính được ước tính theo năm trước."],
                                 [None], ["Liên hệ: Phòng Tài chính - Kế hoạch"]])


def summary_grid(name: str) -> Grid:
    return Grid(name=name, rows=[["BẢNG TỔNG HỢP NHANH"], [None, None], ["Hạng mục", "Số lượng", "So với năm trước"],
                                 ["Hợp tác xã", 40, "tăng"], ["Tổ hợp tác", 18, "giảm"]], row0=1, col0=1)


def plan_packs(rng: random.Random, year: int, district: str, folder: str) -> list[FilePlan]:
    pack = FIXED_PACKS.get((year, district)) or rng.choice(PACKS)
    base = f"{year}/{folder}"

    def opt(form: str) -> dict[str, bool]:
        if form == "HTX":
            return {"workers": rng.random() < 0.75, "rating": rng.random() < 0.5, "ocop_stars": rng.random() < 0.6,
                    "high_tech": rng.random() < 0.65}
        if form == "THT":
            return {"workers": rng.random() < 0.7}
        if form == "HO_TRO":
            return {"decision_no": rng.random() < 0.7}
        return {}

    def sp(form: str, style: str, name: str, hidden: bool = False) -> SheetPlan:
        return SheetPlan(form=form, layout=make_layout(rng, form, style, opt(form)), name=name, year=year,
                         district=district, hidden=hidden)

    def fp(name: str, fmt: str, sheets: list[Any], **kw: Any) -> FilePlan:
        return FilePlan(rel=f"{base}/{name}", fmt=fmt, sheets=sheets, **kw)

    if pack == "official":
        extra = [notes_grid("Ghi chú", year)] if rng.random() < 0.5 else []
        return [fp(f"Bao cao KTTT {year}.xlsx", "xlsx",
                   [sp("HTX", "official", "HTX"), sp("THT", "official", "THT"), sp("HO_TRO", "official", "Hỗ trợ")] + extra)]
    if pack == "official_b":
        return [fp(f"BC kinh te tap the nam {year}.xlsx", "xlsx",
                   [sp("HTX", "official_b", "Biểu 01-HTX"), sp("THT", "official_b", "Biểu 02-THT"),
                    sp("HO_TRO", "official_b", "Biểu 03-HT")])]
    if pack == "separate":
        return [fp(f"danh-sach-htx-{year}.xlsx", "xlsx", [sp("HTX", "plain", "Sheet1")]),
                fp(f"danh-sach-tht-{year}.xlsx", "xlsx", [sp("THT", "plain", "Sheet1")]),
                fp(f"kinh-phi-ho-tro-{year}.xlsx", "xlsx", [sp("HO_TRO", "noaccent", "Sheet1")])]
    if pack == "misleading":
        return [fp(f"BC {year}.xlsx", "xlsx",
                   [summary_grid("Tổng hợp"), sp("HTX", "plain", "THT"), sp("THT", "official", "HTX"),
                    sp("HO_TRO", "plain", "Sheet3", hidden=True)])]
    if pack == "offset":
        return [fp(f"bieu-mau-{year}.xlsx", "xlsx",
                   [sp("HTX", "offset", "Sheet1"), sp("THT", "offset", "Sheet2"), sp("HO_TRO", "offset", "Sheet3")])]
    if pack == "noaccent_one":
        return [fp(f"bao_cao_{year}.xlsx", "xlsx",
                   [sp("THT", "noaccent", "DS THT"), sp("HTX", "noaccent", "DS HTX"), sp("HO_TRO", "plain", "Ho tro")])]
    if pack == "csv3":
        h = sp("HTX", "csv", f"htx-{year}")
        h.layout.title = ["short"]
        return [fp(f"htx-{year}.csv", "csv", [h], delimiter=";", bom=True),
                fp(f"tht-{year}.csv", "csv", [sp("THT", "csv", f"tht-{year}")], delimiter=","),
                fp(f"ho-tro-{year}.csv", "csv", [sp("HO_TRO", "csv", f"ho-tro-{year}")], delimiter=";")]
    if pack == "csv1":
        return [fp(f"htx_{year}.csv", "csv", [sp("HTX", "csv", f"htx_{year}")], delimiter=","),
                fp(f"tht_{year}.csv", "csv", [sp("THT", "csv", f"tht_{year}")], delimiter=";", bom=True),
                fp(f"ho-tro {year}.xlsx", "xlsx", [sp("HO_TRO", "official_b", "KP hỗ trợ")])]
    if pack == "xls":
        return [fp(f"BaoCao_{year}.xls", "xls",
                   [sp("HTX", "official", "HTX"), sp("THT", "plain", "THT"), sp("HO_TRO", "official_b", "Ho tro")])]
    if pack == "ods":
        return [fp(f"bao-cao-{year}.ods", "ods",
                   [sp("HTX", "official", "Danh sách HTX"), sp("THT", "plain", "Danh sách THT"),
                    sp("HO_TRO", "plain", "Hỗ trợ")])]
    if pack == "resubmission":
        old_htx = sp("HTX", "official", "HTX")
        old_htx.counted = False
        old = fp(f"BC-HTX-{year}-lan1.xlsx", "xlsx", [old_htx, sp("THT", "official", "THT"), sp("HO_TRO", "official", "Hỗ trợ")],
                 mtime=datetime(year + 1, 1, 8, 9, 0, 0), superseded_forms=("HTX",))
        new = fp(f"BC-HTX-{year}-nop-lai.xlsx", "xlsx", [sp("HTX", "official", "HTX (sửa)")],
                 mtime=datetime(year + 1, 1, 25, 15, 30, 0))
        return [old, new]
    raise ValueError(pack)


# ----------------------------------------------------------------------------- values and calibration


def row_values(e: Ent, year: int, status: str, r: random.Random) -> dict[str, Any]:
    growth = {2018: 0.93, 2019: 0.97, 2020: 1.0, 2021: 1.04, 2022: 1.06, 2023: 1.08, 2024: 1.1, 2025: 1.12,
              2026: 1.14}[year]
    members = max(1.0, e.base_members * growth * r.gauss(1, 0.05))
    active = status == "active"
    rev = e.base_revenue * r.lognormvariate(0, 0.15) * (1 if active else 0.2)
    v: dict[str, Any] = {
        "reg_code": e.reg_code, "name": e.name, "commune": e.commune, "kind": e.kind,
        "established_on": e.established_on, "sector": e.sector, "status": status,
        "members": members, "workers": None,
        "revenue": rev if (active and r.random() > 0.05) or (not active and r.random() < 0.3) else None,
        "profit": None, "income": None, "rating": None, "ocop_stars": None, "high_tech": False,
    }
    if v["revenue"] is not None and r.random() > 0.05:
        v["profit"] = v["revenue"] * e.margin * r.gauss(1, 0.1)
    if active and r.random() > 0.08:
        v["income"] = max(0.3, e.base_income * r.gauss(1, 0.06))
    if r.random() > 0.1:
        v["workers"] = e.worker_ratio
    if e.etype == "HTX":
        if active:
            v["rating"] = r.choices(["good", "fair", "average", "weak", None], [0.25, 0.35, 0.2, 0.08, 0.12])[0]
        else:
            v["rating"] = r.choice(["weak", None])
        if active and e.ocop_from is not None and year >= e.ocop_from:
            v["ocop_stars"] = e.ocop_stars
    return v


def _fix_total(vals: list[int], total: int, minimum: int | None) -> list[int]:
    """Make integers sum to total by changing the largest values (keeps them >= minimum)."""
    diff = total - sum(vals)
    order = sorted(range(len(vals)), key=lambda i: (-abs(vals[i]), i))
    k = 0
    while diff != 0:
        i = order[k % len(order)]
        step = diff if minimum is None else max(diff, minimum - vals[i])
        if diff < 0 and minimum is not None:
            step = max(diff, -(vals[i] - minimum))
        vals[i] += step
        diff -= step
        k += 1
        if k > 10 * len(order) + 10:
            raise RuntimeError("cannot reach total")
    return vals


def calibrate(rows: list[WRow], members_total: int, rev_mean: float, profit_mean: float, income_mean: float) -> None:
    """Exact calibration on the given (active, valid, counted) rows; values in place."""
    # members: integer sum
    m = [w.values["members"] for w in rows]
    f = members_total / sum(m)
    mi = _fix_total([max(1, round(x * f)) for x in m], members_total, 1)
    for w, x in zip(rows, mi):
        w.values["members"] = x
        if w.values["workers"] is not None and not isinstance(w.values["workers"], int):
            w.values["workers"] = max(1, round(x * w.values["workers"]))
    # revenue / profit: mean over reporters, in cents, whole millions except the adjusted row
    for col, mean in (("revenue", rev_mean), ("profit", profit_mean)):
        rep = [w for w in rows if w.values[col] is not None]
        total_c = round(mean * 100 * len(rep))
        vals = [w.values[col] for w in rep]
        f = total_c / 100 / sum(vals)
        cents = [round(x * f) * 100 for x in vals]
        cents = _fix_total(cents, total_c, 0 if col == "revenue" else None)
        for i in range(0, len(cents) - 1, 11):   # some half millions (1.234,5), in pairs: the mean stays exact
            if cents[i + 1] >= 100:
                cents[i] += 50
                cents[i + 1] -= 50
        for w, c in zip(rep, cents):
            w.values[col] = c / 100
    # income: weighted mean in cents, weight = workers if reported else members
    rep = [w for w in rows if w.values["income"] is not None]
    ws = [w.values["workers"] if w.values["workers"] is not None else w.values["members"] for w in rep]
    W = sum(ws)
    target = round(income_mean * 100)
    raw = [w.values["income"] for w in rep]
    f = income_mean / (sum(x * y for x, y in zip(raw, ws)) / W)
    k = [max(30, round(x * f * 100)) for x in raw]
    d = target * W - sum(a * b for a, b in zip(k, ws))
    order = sorted(range(len(rep)), key=lambda i: (-ws[i], i))
    for i in order:
        if d == 0:
            break
        q = int(d / ws[i])
        q = max(q, 30 - k[i])
        k[i] += q
        d -= q * ws[i]
    if d != 0:
        # solve x*wa + y*wb = d with gcd(wa, wb) = 1
        for a in order:
            for b in order:
                if a != b and ws[a] > 1 and ws[b] > 1 and math.gcd(ws[a], ws[b]) == 1:
                    for x in range(ws[b]):
                        if (d - x * ws[a]) % ws[b] == 0:
                            y = (d - x * ws[a]) // ws[b]
                            if k[a] + x >= 30 and k[b] + y >= 30:
                                k[a] += x
                                k[b] += y
                                d = 0
                            break
                if d == 0:
                    break
            if d == 0:
                break
    if d != 0:
        raise RuntimeError("income calibration failed")
    for w, c in zip(rep, k):
        w.values["income"] = c / 100


# ----------------------------------------------------------------------------- generation


def _target_text(t: Any) -> tuple[str, float | None, float | None]:
    if isinstance(t, (int, float)):
        return str(t), float(t), float(t)
    s = str(t)
    if s.startswith("từ"):
        v = float(s.split()[1])
        return s, v, None
    a, b = s.replace("%", "").split("-")
    return s, float(a), float(b)


def folder_name(year: int, district: str) -> str:
    name = FOLDERS[district][YEARS.index(year)] or FOLDERS[district][0]
    if name.startswith("NFD:"):
        return unicodedata.normalize("NFD", name[4:])
    return name


def fake_values(form: str, year: int, district: str, r: random.Random, code: str | None) -> dict[str, Any]:
    commune = r.choice(COMMUNES[district])
    if form == "HTX":
        return {"reg_code": code, "name": f"HTX {r.choice(SECTORS['agriculture'][1])} {r.choice(['Suối Hoa', 'Bản Mới', 'Đồi Chè', 'Thung Mây'])}",
                "commune": commune, "kind": "htx", "established_on": date(year - 3, 5, 12), "sector": "agriculture",
                "status": "active", "members": 17, "workers": 12, "revenue": 820.0, "profit": 60.0, "income": 3.5,
                "rating": "fair", "ocop_stars": None, "high_tech": False}
    return {"name": "Tổ hợp tác chăn nuôi Bản Mới", "commune": commune, "established_on": date(year - 2, 3, 2),
            "sector": "agriculture", "status": "active", "members": 11, "workers": 9, "revenue": 310.0,
            "profit": 28.0, "income": 1.3}


def generate(out_dir: Path, seed: int = 2020, scale: int = 1) -> Truth:
    """Write the sample province under out_dir (year folders are replaced) and return its ground truth."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for child in out_dir.iterdir():
        if child.is_dir() and child.name.isdigit() and len(child.name) == 4:
            shutil.rmtree(child)
    rng = random.Random(f"coop-sample-{seed}")
    pop = Population(random.Random(f"pop-{seed}"), scale)
    pop.simulate("HTX", (52, 365, 20, 8), HTX_COUNTS, credit_funds=4 * scale)
    pop.simulate("THT", (18, 190, 6, 3), THT_COUNTS)

    # 1. files and layouts per district-year
    lay_rng = random.Random(f"layout-{seed}")
    files: list[FilePlan] = []
    target_sheet: dict[tuple[int, str, str], SheetPlan] = {}
    old_sheet: dict[tuple[int, str, str], SheetPlan] = {}
    for year in YEARS:
        for code, _name, _w, last in DISTRICTS:
            if last is not None and year > last:
                continue
            packs = plan_packs(lay_rng, year, code, folder_name(year, code))
            for fpl in packs:
                for s in fpl.sheets:
                    if isinstance(s, SheetPlan):
                        (target_sheet if s.counted else old_sheet)[(year, code, s.form)] = s
            files += packs

    # 2. register rows
    val_rng = random.Random(f"values-{seed}")
    active_rows: dict[tuple[str, int], list[WRow]] = {}
    ent_of: dict[int, Ent] = {}
    for etype in ("HTX", "THT"):
        for year in YEARS:
            for e in pop.register(etype, year):
                w = WRow(form=etype, values=row_values(e, year, e.status[year], val_rng))
                if etype == "THT":
                    w.values.pop("reg_code")
                    for c in ("kind", "rating", "ocop_stars", "high_tech"):
                        w.values.pop(c)
                sp_ = target_sheet[(year, e.district(year), etype)]
                for c in FORM_COLUMNS[etype]:
                    if c not in sp_.layout.columns and c not in ("high_tech",):
                        w.values[c] = None
                    if c == "high_tech" and c not in sp_.layout.columns:
                        w.values[c] = False
                sp_.rows.append(w)
                ent_of[id(w)] = e
                if e.status[year] == "active":
                    active_rows.setdefault((etype, year), []).append(w)
    # workers of non-active rows and of rows outside calibration
    for sp_ in target_sheet.values():
        for w in sp_.rows:
            if isinstance(w.values.get("workers"), float):
                w.values["workers"] = max(1, round(w.values["members"] * w.values["workers"]))
            if isinstance(w.values.get("members"), float):
                w.values["members"] = max(1, round(w.values["members"]))
    for (etype, year), rows in active_rows.items():
        mt, rv, pf, inc = TARGETS[(etype, year)]
        calibrate(rows, mt * scale, rv, pf, inc)
    for sp_ in target_sheet.values():      # non-active rows: round money to whole millions
        for w in sp_.rows:
            for c in ("revenue", "profit"):
                if w.values.get(c) is not None and w.values["status"] != "active":
                    w.values[c] = float(round(w.values[c]))
            if w.values.get("income") is not None and w.values["status"] != "active":
                w.values["income"] = round(w.values["income"] * 4, 1)
    # high technology: the most tech-minded active HTX in sheets that have the column
    for year in YEARS:
        cand = [w for w in active_rows[("HTX", year)] if "high_tech" in target_sheet[(year, ent_of[id(w)].district(year), "HTX")].layout.columns]
        cand.sort(key=lambda w: (-ent_of[id(w)].tech, ent_of[id(w)].uid))
        for w in cand[:HIGH_TECH[year] * scale]:
            w.values["high_tech"] = True

    # 3. support allocations
    sup_rng = random.Random(f"support-{seed}")
    sup_rows: list[tuple[int, str, dict[str, Any]]] = []   # (year, district, values)
    dec_no = [100]

    def support(e: Ent, year: int, stype: str, on: date, amount: float, participants: int | None = None) -> None:
        dec_no[0] += sup_rng.randrange(3, 40)
        sup_rows.append((year, e.district(year), {
            "reg_code": e.reg_code, "htx_name": e.name, "support_type": stype, "amount": float(amount), "participants": participants,
            "decision_no": f"{dec_no[0]}/QĐ-UBND", "allocated_on": on}))

    def date_in(year: int, after: date | None = None) -> date:
        a = max(date(year, 1, 1), after or date(year, 1, 1))
        b = date(year, 12, 31)
        return a + timedelta(days=sup_rng.randrange((b - a).days + 1))

    htx = [e for e in pop.ents if e.etype == "HTX"]
    window = [e for e in htx if e.status.get(2020) == "active" and 2018 <= e.established_on.year <= 2020]
    window.sort(key=lambda e: e.uid)
    window_ids = {id(e) for e in window}
    n_supported = len(window) - BACKLOG_2020 * scale
    if n_supported < 0:
        raise RuntimeError("not enough HTX in the backlog window")
    chosen = set(id(e) for e in sup_rng.sample(window, n_supported))
    backlog_2020 = []
    for e in window:
        if id(e) in chosen:
            y = sup_rng.randint(e.established_on.year, 2020)
            support(e, y, "establishment", date_in(y, e.established_on), sup_rng.choice([30, 40, 50, 50, 60, 100]))
        else:
            backlog_2020.append(e)
            if sup_rng.random() < 0.3:
                support(e, 2021, "establishment", date_in(2021), sup_rng.choice([30, 50, 60]))
    for e in htx:
        y = e.established_on.year
        if id(e) in window_ids:
            continue
        if y in (2018, 2019) and sup_rng.random() < 0.4:
            last_year = max(yy for yy in e.status)
            sy = sup_rng.randint(y, min(last_year, 2021))
            support(e, sy, "establishment", date_in(sy, e.established_on), 50)
        elif y == 2021 and sup_rng.random() < 0.35:
            support(e, 2021, "establishment", date_in(2021, e.established_on), sup_rng.choice([30, 50]))
        elif y in (2016, 2017) and sup_rng.random() < 0.25:
            support(e, 2018, "establishment", date_in(2018), 30)
    for year in YEARS:
        valid_d = [c for c, _, _, last in DISTRICTS if last is None or year <= last]
        act = [e for e in htx if e.status.get(year) == "active"]
        # training: participants sum exactly to TRAINING[year]
        parts: list[tuple[str, int]] = []
        for d in valid_d:
            for _ in range(sup_rng.choice([1, 2, 2])):
                parts.append((d, sup_rng.randint(15, 45)))
        vals = _fix_total([p for _, p in parts], TRAINING[year] * scale, 5)
        for (d, _), p in zip(parts, vals):
            pool = [e for e in act if e.district(year) == d and e.sector != "credit_fund"]
            e = sup_rng.choice(pool)
            support(e, year, "training", date_in(year), float(sup_rng.randrange(15, 90)), p)
        for d in valid_d:
            pool = [e for e in act if e.district(year) == d]
            for _ in range(sup_rng.choice([0, 1, 2])):
                e = sup_rng.choice(pool)
                st = sup_rng.choice(["trade_promotion", "technology", "infrastructure", "credit", "other"])
                support(e, year, st, date_in(year), float(sup_rng.randrange(50, 800)))
    sup_rows.sort(key=lambda t: (t[0], t[1], t[2]["allocated_on"], t[2]["decision_no"]))
    for year, d, v in sup_rows:
        target_sheet[(year, d, "HO_TRO")].rows.append(WRow(form="HO_TRO", values=v))
    # a support row for an HTX that no register holds yet (loaded, warned about)
    target_sheet[(2021, "157", "HO_TRO")].rows.append(WRow(form="HO_TRO", values={
        "reg_code": "5400999001", "htx_name": "HTX Nông sản sạch Mường Vang", "support_type": "trade_promotion", "amount": 45.0, "participants": None,
        "decision_no": "812/QĐ-UBND", "allocated_on": date(2021, 11, 3)}))

    # 4. planted invalid rows (extra rows, counted in no indicator)
    bad = random.Random(f"bad-{seed}")

    def plant(year: int, d: str, form: str, values: dict[str, Any], raw: dict[str, Any], expect: list[tuple[str, str]],
              pos: float | None = None) -> None:
        sp_ = target_sheet[(year, d, form)]
        w = WRow(form=form, values=values, raw=raw, expect=expect, valid=False)
        i = int(len(sp_.rows) * (pos if pos is not None else bad.uniform(0.2, 0.8)))
        sp_.rows.insert(i, w)

    def fresh_code() -> str:
        return pop.new_code()

    plant(2020, "157", "HTX", fake_values("HTX", 2020, "157", bad, fresh_code()), {"established_on": "31/02/2020"},
          [("established_on", "invalid_date")])
    plant(2019, "153", "HTX", fake_values("HTX", 2019, "153", bad, fresh_code()), {"established_on": date(2020, 3, 15)},
          [("established_on", "date_after_report_year")])
    plant(2021, "155", "HTX", fake_values("HTX", 2021, "155", bad, fresh_code()), {"sector": "Chăn nuôi ong mật"},
          [("sector", "unknown_category")])
    plant(2020, "159", "THT", fake_values("THT", 2020, "159", bad, None), {"members": -5}, [("members", "negative_value")])
    plant(2018, "155", "HTX", fake_values("HTX", 2018, "155", bad, fresh_code()), {"revenue": "khoảng 500"},
          [("revenue", "invalid_number")])
    plant(2020, "148", "HTX", fake_values("HTX", 2020, "148", bad, fresh_code()), {"profit": Err("#N/A")},
          [("profit", "excel_error")])
    plant(2019, "152", "HTX", fake_values("HTX", 2019, "152", bad, None), {"reg_code": None},
          [("reg_code", "missing_value")])
    dup = fresh_code()
    v1 = fake_values("HTX", 2021, "157", bad, dup)
    v2 = dict(v1, name="HTX Dịch vụ tổng hợp Đồi Chè", members=23)
    plant(2021, "157", "HTX", v1, {}, [("reg_code", "duplicate_code")], pos=0.3)
    plant(2021, "157", "HTX", v2, {}, [("reg_code", "duplicate_code")], pos=0.7)
    g1 = fake_values("THT", 2021, "158", bad, None)
    g2 = dict(g1, name="TO HOP TAC CHAN NUOI BAN MOI", members=14)
    plant(2021, "158", "THT", g1, {}, [("name", "duplicate_group")], pos=0.4)
    plant(2021, "158", "THT", g2, {}, [("name", "duplicate_group")], pos=0.6)
    victim = sorted((e for e in backlog_2020 if e.district(2020) == "150"), key=lambda e: e.uid)[0]
    plant(2020, "150", "HO_TRO", {"reg_code": victim.reg_code, "htx_name": victim.name, "support_type": "establishment", "amount": 0.0,
                                  "participants": None, "decision_no": "95/QĐ-UBND", "allocated_on": date(2020, 9, 14)},
          {"amount": 0}, [("amount", "not_positive")])
    plant(2021, "156", "HO_TRO", {"reg_code": sorted(target_sheet[(2021, "156", "HTX")].rows, key=lambda w: str(w.values.get("reg_code")))[0].values["reg_code"],
                                  "support_type": "other", "amount": 120.0, "participants": None,
                                  "decision_no": "310/QĐ-UBND", "allocated_on": date(2021, 6, 2)},
          {"support_type": "Hỗ trợ giống cây trồng"}, [("support_type", "unknown_category")])
    plant(2019, "156", "HTX", fake_values("HTX", 2019, "156", bad, fresh_code()), {"members": 25.5},
          [("members", "not_integer")])
    plant(2018, "158", "HTX", fake_values("HTX", 2018, "158", bad, None), {"reg_code": "54001A2345"},
          [("reg_code", "invalid_reg_code")])

    # 5. the superseded first submission: same HTX with older figures and one row fewer
    for key, old in old_sheet.items():
        for w in target_sheet[key].rows[:-1]:
            if not w.valid:
                continue
            v = dict(w.values)
            v["members"] = max(1, v["members"] + bad.choice([-2, -1, 1, 3]))
            if v.get("revenue") is not None:
                v["revenue"] = float(round(v["revenue"] * 0.9))
            old.rows.append(WRow(form=w.form, values=v, counted=False))

    # 6. province plans, rejected files
    for year, items in PLANS.items():
        folder = PROVINCE_FOLDERS[year]
        lay = make_layout(lay_rng, "CHI_TIEU", "official" if year != 2020 else "plain", {})
        lay.total = None
        sp_ = SheetPlan(form="CHI_TIEU", layout=lay, name="Kế hoạch" if year != 2020 else "Sheet1", year=year, district=None)
        for code, label, unit, tgt in items:
            sp_.rows.append(WRow(form="CHI_TIEU", values={"code": code, "label": label, "unit": unit, "target": tgt}))
        name = {2019: "ke-hoach-2019.xlsx", 2020: "Ke hoach KTTT 2020.xlsx", 2021: "Chi tieu KTTT 2021.xlsx"}[year]
        files.append(FilePlan(rel=f"{year}/{folder}/{name}", fmt="xlsx", sheets=[sp_], mtime=datetime(year, 1, 20, 9, 0, 0)))
    ks = SheetPlan(form="HTX", layout=make_layout(lay_rng, "HTX", "plain", {}), name="HTX", year=2021, district="151", counted=False)
    for i in range(4):
        ks.rows.append(WRow(form="HTX", values=fake_values("HTX", 2021, "151", bad, fresh_code()), counted=False))
    files.append(FilePlan(rel="2021/Kỳ Sơn/bao-cao-2021.xlsx", fmt="xlsx", sheets=[ks], rejected="district_not_valid_for_year",
                          mtime=datetime(2022, 1, 12, 8, 0, 0)))
    files.append(FilePlan(rel=f"2020/{folder_name(2020, '155')}/Bao cao HTX 2020 (ban loi).xlsx", fmt="bytes",
                          payload="<html><body><h1>Lỗi tải tệp</h1><p>Phiên làm việc đã hết hạn.</p></body></html>\n".encode(),
                          rejected="unreadable_file", mtime=datetime(2021, 1, 14, 8, 0, 0)))
    files.append(FilePlan(rel=f"2019/{folder_name(2019, '158')}/bieu-mau-trong.csv", fmt="bytes", payload=b"",
                          rejected="empty_file", mtime=datetime(2020, 1, 14, 8, 0, 0)))
    letter = Grid(name="Công văn", rows=[["UBND HUYỆN ĐÀ BẮC"], ["Số: 45/UBND-NN"], [None],
                                         ["V/v gửi báo cáo kinh tế tập thể năm 2021"], [None],
                                         ["Kính gửi: Sở Kế hoạch và Đầu tư tỉnh Hòa Bình"],
                                         ["UBND huyện gửi kèm báo cáo theo biểu mẫu quy định."]])
    files.append(FilePlan(rel=f"2021/{folder_name(2021, '150')}/cong-van-gui-so.xlsx", fmt="xlsx", sheets=[letter],
                          rejected="no_recognized_form", mtime=datetime(2022, 1, 11, 8, 0, 0)))
    # the cover letter as Word: not a spreadsheet
    files.append(FilePlan(rel=f"2021/{folder_name(2021, '150')}/cong-van-gui-so.docx", fmt="bytes",
                          payload=b"PK\x03\x04 (Word document placeholder: V/v gui bao cao KTTT nam 2021)\n",
                          rejected="unsupported_file_type", mtime=datetime(2022, 1, 11, 8, 0, 0)))
    # a district that pasted the province plan into its workbook: that sheet is refused, the rest loads
    d_plan = next(f for f in files if f.rel.startswith(f"2021/{folder_name(2021, '157')}/"))
    lay = make_layout(lay_rng, "CHI_TIEU", "plain", {})
    sp_ = SheetPlan(form="CHI_TIEU", layout=lay, name="KH tỉnh giao", year=2021, district="157", counted=False,
                    rejected="form_not_allowed_here")
    for code, label, unit, tgt in PLANS[2021]:
        sp_.rows.append(WRow(form="CHI_TIEU", values={"code": code, "label": label, "unit": unit, "target": tgt},
                             counted=False))
    d_plan.sheets.append(sp_)

    # 6b. the years since 2022 (own streams: the files and rows of 2018-2021 do not change)
    supported = {v["reg_code"] for _, _, v in sup_rows if v["support_type"] == "establishment"}
    reform_files = reform_years(pop, seed, scale, supported)

    # 7. write (the years from 2022 after 2018-2021, each file of theirs with its own writer stream)
    truth = Truth(seed=seed, scale=scale, forms={f: [] for f in FORM_COLUMNS})
    write_files(out_dir, files + reform_files, truth, random.Random(f"write-{seed}"))
    return truth


def write_files(out_dir: Path, files: list[FilePlan], truth: Truth, wr_rng: random.Random) -> None:
    """Write the planned files and record them (valid rows, planted problems, rejections) in `truth`."""
    for fpl in files:
        path = out_dir / fpl.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        grids: list[Grid] = []
        frng = random.Random(fpl.wr_seed) if fpl.wr_seed else wr_rng
        for s in fpl.sheets:
            if isinstance(s, Grid):
                grids.append(s)
                if fpl.rejected is None:
                    truth.ignored_sheets.append({"source_file": fpl.rel, "sheet": s.name, "reason_code": "unrecognized_sheet"})
                continue
            cm = CellMaker(frng, s.layout, csv_mode=fpl.fmt == "csv")
            g = build_grid(s.layout, s.rows, cm, s.year, s.district, s.name)
            g.hidden = s.hidden
            grids.append(g)
        if fpl.fmt == "xlsx":
            write_xlsx(path, grids, in_memory=fpl.wr_seed is not None)
        elif fpl.fmt == "xls":
            write_xls(path, grids)
        elif fpl.fmt == "ods":
            write_ods(path, grids)
        elif fpl.fmt == "csv":
            write_csv(path, grids[0], fpl.delimiter, fpl.bom)
        else:
            path.write_bytes(fpl.payload)
        ts = (fpl.mtime - datetime(1970, 1, 1)).total_seconds()      # mtimes are UTC, never the wall clock
        os.utime(path, (ts, ts))
        truth.files.append(fpl.rel)
        if fpl.rejected:
            truth.rejected_files.append({"source_file": fpl.rel, "sheet": None, "reason_code": fpl.rejected})
            continue
        for form in fpl.superseded_forms:
            truth.superseded.append({"source_file": fpl.rel, "form": form})
        for s in fpl.sheets:
            if isinstance(s, SheetPlan) and s.rejected:
                truth.rejected_sheets.append({"source_file": fpl.rel, "sheet": s.name, "reason_code": s.rejected})
            if not isinstance(s, SheetPlan) or not s.counted:
                continue
            for w in s.rows:
                if not w.valid:
                    for col, reason in w.expect:
                        rawv = w.raw.get(col, w.values.get(col))
                        truth.invalid_rows.append({
                            "source_file": fpl.rel, "sheet": s.name, "row_number": w.row_number,
                            "column_name": col, "reason_code": reason, "raw_value": _raw_text(rawv)})
                    continue
                truth.forms[s.form].append(_truth_row(s, fpl.rel, w))
    truth.files.sort()
    for f in truth.forms.values():
        f.sort(key=lambda r: (r["year"], r["unit_code"] or "", r["source_file"], r["sheet"], r["row_number"]))
    truth.invalid_rows.sort(key=lambda r: (r["source_file"], r["sheet"], r["row_number"], r["column_name"]))


def _raw_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, date):
        return v.strftime("%d/%m/%Y")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _truth_row(s: SheetPlan, rel: str, w: WRow) -> dict[str, Any]:
    v = w.values
    ref = load_ref()
    row: dict[str, Any] = {"year": s.year, "district_code": s.district if s.level == "district" else None,
                           "source_file": rel, "sheet": s.name, "row_number": w.row_number}
    if s.form == "CHI_TIEU":
        raw, lo, hi = _target_text(v["target"])
        row.update(code=v["code"], label=v["label"], unit=v["unit"], target_raw=raw, target_min=lo, target_max=hi)
        prov = s.province or "17"          # the province whose plan it is (its code that year)
        row.update(unit_code=prov, unit_level="province", area_code=prov if s.year < REFORM_YEAR else None)
        return row
    row.update(unit_code=s.district, unit_level=s.level, area_code=ref.area(s.district, s.level))
    if s.form in ("HTX", "THT"):
        if s.level == "commune":
            old, new = None, s.district
        else:
            old = w.old_commune if w.commune_set else ref.match_former(s.district, v.get("commune"))
            new = ref.default_new[old] if old else None
        row.update(old_commune_code=old, commune_code=new, approximate=old in ref.split if old else False)
    for c in FORM_COLUMNS[s.form]:
        x = v.get(c) if c in s.layout.columns else None      # a column the sheet lacks is not reported
        if isinstance(x, date):
            x = x.isoformat()
        elif c in ("revenue", "profit", "income", "amount") and x is not None:
            x = float(x)
        row[c] = x
    if s.form == "HTX":
        row["high_tech"] = bool(v.get("high_tech"))
    return row


# ----------------------------------------------------------------------------- reference units (the 2025 reform)

REF_DIR = Path(__file__).resolve().parent.parent / "schemas" / "reference"
_COMMUNE_PREFIXES = ("thi tran ", "phuong ", "xa ", "dac khu ", "tt. ", "tt ")


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(REF_DIR / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def commune_key(text: str) -> str:
    """A commune name folded (case, diacritics, tone-mark placement) and without its type prefix."""
    f = fold(text)
    for p in _COMMUNE_PREFIXES:
        if f.startswith(p):
            return f[len(p):].strip()
    return f


class Ref:
    """Units of Vietnam from `schemas/reference/*.csv` (reference data read as CSV, not pipeline code)."""

    def __init__(self) -> None:
        self.districts = {r["district_code"]: r for r in _read_csv("districts.csv")}
        self.former = {r["commune_code"]: r for r in _read_csv("former_communes.csv")}
        self.communes = {r["commune_code"]: r for r in _read_csv("communes.csv")}
        self.by_district: dict[str, list[str]] = {}
        for c, r in self.former.items():
            self.by_district.setdefault(r["district_code"], []).append(c)
        self.default_new: dict[str, str] = {}
        self.split: set[str] = set()
        for r in _read_csv("commune_lineage.csv"):
            old = r["old_commune_code"]
            if not old:
                continue
            if r["split"] == "true":
                self.split.add(old)
            if r["is_default"] == "true":
                self.default_new[old] = r["new_commune_code"]
        self.merge = {r["former_province_code"]: r["current_province_code"] for r in _read_csv("province_merge.csv")}
        self.province_names = {(r["province_code"], r["era"]): r["province_name"] for r in _read_csv("provinces.csv")}
        self.successor = {r["unit_code"]: r["successor_code"] for r in _read_csv("unit_history.csv")}
        self._names: dict[str, list[tuple[str, str, str]]] = {}

    def former_of(self, district: str) -> list[str]:
        """Former communes of a district; a district merged before the dataset's date (Kỳ Sơn) has them
        listed under its successor."""
        seen: set[str] = set()
        while district not in self.by_district and district in self.successor and district not in seen:
            seen.add(district)
            district = self.successor[district]
        return sorted(self.by_district.get(district, []))

    def match_former(self, district: str, text: str | None) -> str | None:
        """The former commune of `district` a commune cell names: by full name, else by the name without
        its type (Xã Dân Chủ is the Phường Dân Chủ of the dataset); None when blank, unknown or ambiguous."""
        if not text or not text.strip():
            return None
        if district not in self._names:
            self._names[district] = [(c, fold(self.former[c]["commune_name"]), commune_key(self.former[c]["commune_name"]))
                                     for c in self.former_of(district)]
        cands = self._names[district]
        f = fold(text)
        full = [c for c, name, _ in cands if name == f]
        if len(full) == 1:
            return full[0]
        key = commune_key(text)
        short = [c for c, _, k in cands if k == key]
        return short[0] if len(short) == 1 else None

    def area(self, unit: str, level: str) -> str:
        return self.communes[unit]["area_code"] if level == "commune" else self.districts[unit]["province_code"]

    def districts_valid(self, provinces: set[str], year: int) -> list[str]:
        end = date(year, 12, 31).isoformat()
        return sorted(c for c, r in self.districts.items() if r["province_code"] in provinces
                      and (not r["valid_from"] or r["valid_from"] <= end) and (not r["valid_to"] or r["valid_to"] > end))

    def communes_of(self, province: str, area: str | None = None) -> list[str]:
        return sorted(c for c, r in self.communes.items()
                      if r["province_code"] == province and (area is None or r["area_code"] == area))

    def areas_of(self, province: str) -> list[str]:
        return sorted(f for f, c in self.merge.items() if c == province)

    def unit_title(self, unit: str) -> str:
        if unit in self.districts:
            r = self.districts[unit]
            return f"Huyện {r['district_name']}" if r["district_type"] == "Huyện" else r["district_name"]
        return self.communes[unit]["commune_name"] if unit in self.communes else unit

    def place(self, unit: str) -> str:
        if unit in self.districts:
            name = self.districts[unit]["district_name"]
            for p in ("Thành phố ", "Thị xã "):
                name = name.removeprefix(p)
            return name
        return self.communes[unit]["commune_short"] if unit in self.communes else unit


@functools.lru_cache(maxsize=None)
def load_ref() -> Ref:
    return Ref()


# ----------------------------------------------------------------------------- 2022-2026: across the reform

VP_2023 = ("243", "246", "249", "252")   # the Vĩnh Phúc districts that reported for 2023 (5 of 9 did not)
SPLIT_COMMUNE = "05221"                  # Xã Đồng Tân (Mai Châu, 156): split, default successor 05200 Xã Mai Châu
CROSSING = ("157", "05323", "HTX Nông sản sạch Chí Đạo", date(2024, 3, 12))      # -> 05323 Xã Quyết Thắng
FUNDED_2025 = ("155", "05164", "HTX Chè Shan tuyết Tử Nê", date(2024, 5, 20))    # -> 05128 Xã Tân Lạc
SMALL_COMMUNES = {2025: {"25": 10, "26": 5}, 2026: {"25": 12, "26": 6}}         # reporting, of 66 / 36
CODE_PREFIX = {"17": "5400", "25": "2600", "26": "2500"}
AREA_WORDS = {
    "25": ["Đất Tổ", "Hùng Vương", "Chè Phú Thọ", "Bưởi Đoan Hùng", "Sông Thao", "Sông Lô", "Cọ Xanh", "Phú Hộ",
           "Đồng Xanh", "Thành Công", "Tân Tiến", "Hợp Lực", "Phát Đạt", "Hưng Thịnh"],
    "26": ["Tam Đảo", "Đại Lải", "Su Su Tam Đảo", "Bí Đỏ", "Vĩnh Phúc", "Lập Thạch", "Phó Đáy", "Đồng Xanh",
           "Thành Công", "Hợp Lực", "Phát Đạt", "Bình Minh", "Đoàn Kết"],
}
# Hòa Bình area, per year at scale 1: new, exits to suspended, direct dissolutions, reactivations
HB_FLOWS = {
    "HTX": {2022: (45, 12, 8, 2), 2023: (42, 12, 8, 2), 2024: (40, 10, 8, 2), 2025: (30, 14, 10, 2), 2026: (34, 10, 8, 2)},
    "THT": {2022: (12, 3, 2, 1), 2023: (11, 3, 2, 1), 2024: (10, 3, 2, 1), 2025: (8, 4, 3, 1), 2026: (9, 3, 2, 1)},
}
# Hòa Bình area, calibrated exactly (members sum x scale, avg revenue, avg profit, weighted income)
HB_TARGETS = {
    ("HTX", 2022): (14000, 2580, 290, 4.35), ("HTX", 2023): (14500, 2790, 318, 4.52),
    ("HTX", 2024): (14900, 3010, 342, 4.70), ("HTX", 2025): (15000, 3150, 360, 4.85),
    ("HTX", 2026): (15400, 3320, 381, 5.02),
    ("THT", 2022): (3250, 305, 50, 1.52), ("THT", 2023): (3320, 360, 52, 1.58), ("THT", 2024): (3380, 410, 55, 1.63),
    ("THT", 2025): (3400, 440, 57, 1.68), ("THT", 2026): (3460, 470, 59, 1.74),
}
HB_HIGH_TECH = {2022: 25, 2023: 27, 2024: 30, 2025: 32, 2026: 35}
HB_TRAINING = {2022: 520, 2023: 560, 2024: 610, 2025: 580, 2026: 640}
PLANS_EXT = {
    2022: [("new_htx", "Thành lập mới HTX, liên hiệp HTX", "HTX", 50), ("new_tht", "Thành lập mới tổ hợp tác", "THT", 12),
           ("htx_revenue_growth_pct", "Doanh thu bình quân 1 HTX tăng", "%", "10 - 15"),
           ("htx_income_growth_pct", "Thu nhập bình quân của lao động tăng", "%", "từ 4"),
           ("training_turns", "Bồi dưỡng cán bộ, thành viên HTX", "lượt người", 500),
           ("high_tech_htx", "HTX ứng dụng công nghệ cao", "HTX", 25)],
    2023: [("new_htx", "Thành lập mới HTX, liên hiệp HTX", "HTX", 45), ("new_tht", "Thành lập mới tổ hợp tác", "THT", 12),
           ("htx_revenue_growth_pct", "Doanh thu bình quân 1 HTX tăng", "%", "6 - 8"),
           ("htx_income_growth_pct", "Thu nhập bình quân của lao động tăng", "%", "3 - 5"),
           ("training_turns", "Bồi dưỡng cán bộ, thành viên HTX", "lượt người", 550),
           ("high_tech_htx", "HTX ứng dụng công nghệ cao", "HTX", 28)],
    2024: [("new_htx", "Thành lập mới HTX, liên hiệp HTX", "HTX", "từ 40"), ("new_tht", "Thành lập mới tổ hợp tác", "THT", 10),
           ("htx_revenue_growth_pct", "Doanh thu bình quân 1 HTX tăng", "%", "6-8%"),
           ("htx_income_growth_pct", "Thu nhập bình quân của lao động tăng", "%", 4),
           ("training_turns", "Bồi dưỡng cán bộ, thành viên HTX", "lượt người", 600),
           ("high_tech_htx", "HTX ứng dụng công nghệ cao", "HTX", 30)],
    2025: [("new_htx", "Thành lập mới HTX, liên hiệp HTX", "HTX", 80), ("new_tht", "Thành lập mới tổ hợp tác", "THT", 25),
           ("htx_revenue_growth_pct", "Doanh thu bình quân 1 HTX tăng", "%", "5 - 7"),
           ("htx_income_growth_pct", "Thu nhập bình quân của lao động tăng", "%", "từ 5"),
           ("training_turns", "Bồi dưỡng cán bộ, thành viên HTX", "lượt người", 1200),
           ("high_tech_htx", "HTX ứng dụng công nghệ cao", "HTX", 60)],
    2026: [("new_htx", "Thành lập mới HTX, liên hiệp HTX", "HTX", "từ 90"), ("new_tht", "Thành lập mới tổ hợp tác", "THT", 30),
           ("htx_revenue_growth_pct", "Doanh thu bình quân 1 HTX tăng", "%", 6),
           ("htx_income_growth_pct", "Thu nhập bình quân của lao động tăng", "%", "5 - 7"),
           ("training_turns", "Bồi dưỡng cán bộ, thành viên HTX", "lượt người", 1500),
           ("high_tech_htx", "Mô hình HTX điển hình tiên tiến, ứng dụng công nghệ cao", "mô hình", 70)],
}
PROVINCE_FOLDERS_EXT = {2022: "province", 2023: "tinh", 2024: "tỉnh", 2025: "province", 2026: "tinh"}
PLAN_FILES_EXT = {2022: "ke-hoach-KTTT-2022.xlsx", 2023: "Chi tieu KTTT 2023.xlsx", 2024: "KH phat trien KTTT 2024.xlsx",
                  2025: "Ke hoach KTTT 2025 - tinh Phu Tho.xlsx", 2026: "Chi tieu KTTT 2026.xlsx"}
# Hòa Bình district folders 2022, 2023, 2024 ("NFD:" = written decomposed)
FOLDERS_EXT: dict[str, list[str]] = {
    "148": ["Thanh pho Hoa Binh", "TP Hòa Bình", "148"], "150": ["Huyện Đà Bắc", "150", "da_bac"],
    "152": ["152", "Lương Sơn", "huyen-luong-son"], "153": ["kim_boi", "Huyện Kim Bôi", "153"],
    "154": ["Cao Phong", "cao-phong", "Huyện Cao Phong"], "155": ["tan-lac", "Tân Lạc", "155"],
    "156": ["Huyện Mai Châu", "156", "Mai Chau"], "157": ["157", "Huyện Lạc Sơn", "lac-son"],
    "158": ["Yên Thủy", "huyen_yen_thuy", "Yên Thuỷ"], "159": ["lac-thuy", "159", "Huyen Lac Thuy"],
}
COMMUNE_FOLDERS: dict[tuple[int, str], str] = {
    (2025, "05266"): "Lac Son", (2026, "05266"): "05266",                # bare name: the commune in 2025
    (2025, "04795"): "Phường Hòa Bình", (2026, "04795"): "phuong-hoa-binh",
    (2025, "04894"): "phuong_ky_son", (2026, "04894"): "Phường Kỳ Sơn",
    (2025, "05128"): "NFD:Xã Tân Lạc", (2026, "05128"): "tan-lac",
    (2025, "05323"): "xa-quyet-thang", (2026, "05323"): "Xã Quyết Thắng",
    (2025, "05200"): "Xã Mai Châu", (2026, "05200"): "Mai Chau",
    (2025, "07942"): "Phường Phú Thọ", (2026, "08716"): "Phường Vĩnh Phúc",   # not bare: they read as provinces
}
UNKNOWN_PLACES = ["Bản Khả", "Xóm Mới", "Bản Lác", "Xóm Bãi", "Bản Chiềng", "Khu 5", "Xóm Đồi", "Tổ 7"]
_OLD_TONE = {"òa": "oà", "óa": "oá", "ỏa": "oả", "õa": "oã", "ọa": "oạ", "òe": "oè", "óe": "oé",
             "ủy": "uỷ", "úy": "uý", "ùy": "uỳ", "ũy": "uỹ", "ụy": "uỵ"}


def old_tone(s: str) -> str:
    """The old placement of the tone mark (Hòa -> Hoà, Thủy -> Thuỷ)."""
    for a, b in _OLD_TONE.items():
        s = s.replace(a, b)
    return s


def slug(s: str, sep: str = "-") -> str:
    return sep.join(strip_accents(s).lower().split())


def spell_former(row: dict[str, str], r: random.Random) -> str:
    """A former commune as clerks write it: `Xã Chí Đạo`, `Chí Đạo`, `xã chí đạo`, `TT Vụ Bản`, `Xa Chi Dao`."""
    full, short, typ = row["commune_name"], row["commune_short"], row["commune_type"]
    u = r.random()
    if u < 0.45:
        return full
    if u < 0.65:
        return short
    if u < 0.77:
        return full.lower()
    if u < 0.87 and typ == "Thị trấn":
        return f"TT {short}"
    if u < 0.93:
        return strip_accents(full)
    return old_tone(full)


def spell_today(row: dict[str, str], r: random.Random) -> str:
    full, short = row["commune_name"], row["commune_short"]
    u = r.random()
    return full if u < 0.55 else short if u < 0.8 else full.lower() if u < 0.9 else strip_accents(full) if u < 0.95 \
        else old_tone(full)


def unit_folder(ref: Ref, unit: str, level: str, year: int) -> str:
    """The folder a unit's files go into: by code or by name, varied as clerks name them."""
    if level == "commune":
        name = COMMUNE_FOLDERS.get((year, unit))
        if name is None:
            row = ref.communes[unit]
            full, short = row["commune_name"], row["commune_short"]
            opts = [full, unit, slug(full), strip_accents(short), strip_accents(full), slug(full, "_"), short]
            name = opts[(int(unit) // 3 + year) % len(opts)]
    elif unit in FOLDERS_EXT:
        name = FOLDERS_EXT[unit][year - 2022]
    else:
        row = ref.districts[unit]
        typ, dname = row["district_type"], row["district_name"]
        full = f"Huyện {dname}" if typ == "Huyện" else dname
        bare = dname if typ == "Huyện" else (f"TP {ref.place(unit)}" if typ == "Thành phố" else unit)
        opts = [full, slug(full), unit, strip_accents(full), bare]
        name = opts[(int(unit) + year) % len(opts)]
    return unicodedata.normalize("NFD", name[4:]) if name.startswith("NFD:") else name


def report_mtime(year: int, unit: str) -> datetime:
    """When the unit's report was saved: January after the year (the 2026 reports: November 2026)."""
    day = 5 + int(unit) % 20
    return datetime(year + 1, 1, day, 8, 30, 0) if year < 2026 else datetime(2026, 11, day, 8, 30, 0)


def _fake_register_row(form: str, year: int, commune: str | None, name: str, code: str | None) -> dict[str, Any]:
    if form == "HTX":
        return {"reg_code": code, "name": name, "commune": commune, "kind": "htx", "established_on": date(year - 3, 5, 12),
                "sector": "agriculture", "status": "active", "members": 17, "workers": 12, "revenue": 820.0,
                "profit": 60.0, "income": 3.5, "rating": "fair", "ocop_stars": None, "high_tech": False}
    return {"name": name, "commune": commune, "established_on": date(year - 2, 3, 2), "sector": "agriculture",
            "status": "active", "members": 11, "workers": 9, "revenue": 310.0, "profit": 28.0, "income": 1.3}


def reform_years(pop: Population, seed: int, scale: int, supported: set[str]) -> list[FilePlan]:
    """2022-2026 of today's Phú Thọ (25): Hòa Bình's districts (2022-2024) and communes (2025-2026) continuing
    the 2018-2021 population, plus small registers of the former Phú Thọ and Vĩnh Phúc areas. Every stream is
    seeded from (seed, year, ...) so that 2018-2021 stay byte-identical. `supported`: reg_codes that already
    had establishment support (updated)."""
    ref = load_ref()
    k = scale
    pop.codes.add("5400999001")            # the support row of 2021 that no register holds
    assignable: dict[str, list[str]] = {}

    def places(district: str) -> list[str]:
        """Former communes where the generator places cooperatives: not the split ones (one is chosen)."""
        if district not in assignable:
            assignable[district] = [c for c in ref.former_of(district) if c not in ref.split]
        return assignable[district]

    # 0. the former commune of every cooperative of 2018-2021 (its commune cell, else one of its district)
    for e in pop.ents:
        d = e.district(2022)
        code = ref.match_former(d, e.commune)
        if code is None or code in ref.split:
            code = random.Random(f"commune-{seed}-{e.uid}").choice(places(d))
        e.old_commune = code

    hb_communes = ref.communes_of("25", "17")
    protected: set[int] = set()
    specials: dict[str, Ent] = {}
    small_rank: dict[str, list[str]] = {}
    files: list[FilePlan] = []

    def new_ent(etype: str, est: date, area: str, unit: str, old: str | None = None, today: str | None = None,
                **kw: Any) -> Ent:
        place = ref.former[old]["commune_name"] if old else ref.communes[today]["commune_name"]  # type: ignore[index]
        e = pop.make(etype, est, unit, commune=place, words=AREA_WORDS.get(area), code_prefix=CODE_PREFIX[area], **kw)
        e.home, e.area, e.old_commune, e.today = unit, area, old, today
        if e.ocop_from is not None:
            e.ocop_from = max(e.ocop_from, est.year + 1)
        return e

    def evolve_hb(etype: str, year: int) -> None:
        r = pop.rng
        n_new, x, d, re_ = (v * k for v in HB_FLOWS[etype][year])
        prev = [e for e in pop.ents if e.area == "17" and e.etype == etype and year - 1 in e.status]
        act = [e for e in prev if e.status[year - 1] == "active"]
        sus = [e for e in prev if e.status[year - 1] == "suspended"]
        for e in act:
            e.status[year] = "active"
        for e in sus:
            e.status[year] = "suspended"
        cand = [e for e in act if e.sector != "credit_fund" and e.uid not in protected]
        r.shuffle(cand)
        for e in cand[:x]:
            e.status[year] = "suspended"
        for e in cand[x:x + d]:
            e.status[year] = "dissolved"
        r.shuffle(sus)
        for e in sus[:re_]:
            e.status[year] = "active"
        for e in sus[re_:re_ + 2 * k]:
            e.status[year] = "dissolved"
        for i in range(n_new):
            est = pop.rand_date(year, year)
            if year >= REFORM_YEAR:
                c = r.choice(hb_communes)
                e = new_ent(etype, est, "17", c, today=c)
            elif year == 2022 and i < (2 if etype == "HTX" else 1) * k:      # into the split former commune
                e = new_ent(etype, est, "17", "156", old=SPLIT_COMMUNE)
            else:
                dist = pop.pick_district(year)
                e = new_ent(etype, est, "17", dist, old=r.choice(places(dist)))
            e.status[year] = "active"

    def evolve_small(year: int) -> None:
        r = pop.rng
        for e in [e for e in pop.ents if e.area != "17" and year - 1 in e.status]:
            s, u = e.status[year - 1], r.random()
            if s == "active":
                e.status[year] = "suspended" if u < 0.06 else "dissolved" if u < 0.09 else "active"
            elif s == "suspended":
                e.status[year] = "dissolved" if u < 0.3 else "active" if u < 0.5 else "suspended"

    def small_district_ents(year: int, first: bool) -> None:
        r = pop.rng
        for area in ("25", "26"):
            for dist in ref.districts_valid({area}, year):
                if first:
                    for etype, lo, hi, p_new in (("HTX", 3, 7, 0.4), ("THT", 1, 3, 0.25)):
                        for i in range(r.randint(lo, hi) * k):
                            fresh = i == 0 and r.random() < p_new
                            est = pop.rand_date(year, year) if fresh else pop.rand_date(2006 if etype == "HTX" else 2012, year - 1)
                            e = new_ent(etype, est, area, dist, old=r.choice(places(dist)))
                            e.status[year] = "suspended" if (not fresh and r.random() < 0.1) else "active"
                else:
                    for etype, p_new in (("HTX", 0.45), ("THT", 0.25)):
                        for _ in range(k):
                            if r.random() < p_new:
                                e = new_ent(etype, pop.rand_date(year, year), area, dist, old=r.choice(places(dist)))
                                e.status[year] = "active"

    def fill_communes(year: int, units: list[str]) -> None:
        """Every reporting commune holds an active HTX (and, in the small areas, 2 HTX and a THT)."""
        r = pop.rng
        by_unit: dict[str, list[Ent]] = {}
        for e in pop.ents:
            if year in e.status:
                by_unit.setdefault(e.unit(year), []).append(e)
        for c in units:
            area = ref.communes[c]["area_code"]
            here = by_unit.get(c, [])
            need = {"HTX": 1 if area == "17" else 2, "THT": 0 if area == "17" else 1}
            for etype, n in need.items():
                have = [e for e in here if e.etype == etype and e.status[year] == "active"]
                for _ in range(max(0, n * (1 if area == "17" else k) - len(have))):
                    e = new_ent(etype, pop.rand_date(2012, year - 1), area, c, today=c)
                    e.status[year] = "active"
                if area != "17" and r.random() < 0.4:
                    e = new_ent(etype, pop.rand_date(year, year), area, c, today=c)
                    e.status[year] = "active"

    def dedupe_tht(year: int) -> None:
        """A group is identified by unit, commune and name: keep names unique within a unit-year."""
        seen: set[tuple[str, str]] = set()
        for e in sorted((e for e in pop.ents if e.etype == "THT" and year in e.status), key=lambda e: e.uid):
            u = e.unit(year)
            n = 1
            base = e.name
            while (u, fold(e.name)) in seen:
                n += 1
                tail = ref.former[e.old_commune]["commune_short"] if (n == 2 and e.old_commune) else str(n)
                e.name = f"{base} {tail}"
            seen.add((u, fold(e.name)))

    bad = random.Random(f"bad-{seed}-reform")

    def fresh_code(prefix: str) -> str:
        saved, pop.rng = pop.rng, bad
        try:
            return pop.new_code(prefix)
        finally:
            pop.rng = saved

    for year in EXT_YEARS:
        pop.rng = random.Random(f"pop-{seed}-{year}")
        # 1. who is registered where
        if year == REFORM_YEAR:
            for e in pop.ents:
                if e.today is None and e.old_commune is not None:
                    e.today = ref.default_new[e.old_commune]
            for area in ("25", "26"):
                cnt: dict[str, int] = {}
                for e in pop.ents:
                    if e.area == area and e.etype == "HTX" and e.status.get(2024) in ("active", "suspended"):
                        cnt[e.today] = cnt.get(e.today, 0) + 1  # type: ignore[index]
                small_rank[area] = sorted(ref.communes_of("25", area), key=lambda c: (-cnt.get(c, 0), c))
        evolve_hb("HTX", year)
        evolve_hb("THT", year)
        if year == 2024:
            for key, (dist, old, name, est) in (("crossing", CROSSING), ("funded_2025", FUNDED_2025)):
                e = new_ent("HTX", est, "17", dist, old=old, sector="agriculture", union=False)
                e.name = name
                e.ocop_from = None
                e.status[2024] = "active"
                protected.add(e.uid)
                specials[key] = e
        if year == 2023:
            small_district_ents(year, first=True)
        elif year > 2023:
            evolve_small(year)
            if year == 2024:
                small_district_ents(year, first=False)
        if year < REFORM_YEAR:
            provinces = {"17"} if year == 2022 else {"17", "25", "26"}
            units = [(d, "district") for d in ref.districts_valid(provinces, year)
                     if year != 2023 or ref.districts[d]["province_code"] != "26" or d in VP_2023]
        else:
            small = [c for a in ("25", "26") for c in small_rank[a][:SMALL_COMMUNES[year][a]]]
            fill_communes(year, hb_communes + small)
            units = [(c, "commune") for c in hb_communes + sorted(small)]
        dedupe_tht(year)
        unit_set = {u for u, _ in units}
        register: dict[tuple[str, str], list[Ent]] = {(u, t): [] for u, _ in units for t in ("HTX", "THT")}
        for e in pop.ents:
            if year in e.status and e.unit(year) in unit_set:
                register[(e.unit(year), e.etype)].append(e)
        level_of = dict(units)
        area_of = {u: ref.area(u, lvl) for u, lvl in units}

        # 2. support
        srng = random.Random(f"support-{seed}-{year}")
        sup: dict[str, list[dict[str, Any]]] = {u: [] for u, _ in units}
        dec = [srng.randrange(100, 200)]

        def date_in(after: date | None = None) -> date:
            a = max(date(year, 1, 1), after or date(year, 1, 1))
            return a + timedelta(days=srng.randrange((date(year, 12, 31) - a).days + 1))

        def support(e: Ent, unit: str, stype: str, on: date, amount: float, participants: int | None = None) -> None:
            dec[0] += srng.randrange(3, 30)
            sup[unit].append({"reg_code": e.reg_code, "htx_name": e.name, "support_type": stype, "amount": float(amount),
                              "participants": participants, "decision_no": f"{dec[0]}/QĐ-UBND", "allocated_on": on})

        active = {u: [e for e in register[(u, "HTX")] if e.status[year] == "active"] for u, _ in units}
        for u, _ in units:
            for e in active[u]:
                if e.reg_code in supported or e.uid in protected or not year - 2 <= e.established_on.year <= year:
                    continue
                if srng.random() < 0.3:
                    support(e, u, "establishment", date_in(e.established_on), srng.choice([30, 40, 50, 50, 60, 100]))
                    supported.add(e.reg_code)  # type: ignore[arg-type]
        if year == 2025:
            e = specials["funded_2025"]
            support(e, e.today, "establishment", date(2025, 9, 18), 50.0)  # type: ignore[arg-type]
            supported.add(e.reg_code)  # type: ignore[arg-type]
        hb_units = [u for u, _ in units if area_of[u] == "17"]
        district_era = year < REFORM_YEAR
        parts = [(u, srng.randint(15, 45) if district_era else srng.randint(6, 22))
                 for u in hb_units for _ in range(srng.choice([1, 2, 2]) if district_era else 1)]
        vals = _fix_total([p for _, p in parts], HB_TRAINING[year] * k, 5 if district_era else 3)
        for (u, _), p in zip(parts, vals):
            pool = [e for e in active[u] if e.sector != "credit_fund"] or active[u]
            support(srng.choice(pool), u, "training", date_in(), float(srng.randrange(15, 90)), p)
        for u, _ in units:
            pool = active[u]
            if area_of[u] == "17":
                n_other = srng.choice([0, 1, 2]) if district_era else int(srng.random() < 0.35)
            else:
                if srng.random() < 0.7 or not sup[u]:
                    support(srng.choice(pool), u, "training", date_in(), float(srng.randrange(10, 40)), srng.randint(8, 30))
                n_other = int(srng.random() < 0.5)
            for _ in range(n_other):
                st = srng.choice(["trade_promotion", "technology", "infrastructure", "credit", "other"])
                support(srng.choice(pool), u, st, date_in(), float(srng.randrange(50, 800)))
            sup[u].sort(key=lambda v: (v["allocated_on"], v["decision_no"]))

        # 3. files per unit (the layouts of 2018-2021, each unit-year from its own stream)
        sheet: dict[tuple[str, str], SheetPlan] = {}
        sheet_fmt: dict[tuple[str, str], str] = {}
        for u, lvl in units:
            forms = {f for f in ("HTX", "THT") if register[(u, f)]} | ({"HO_TRO"} if sup[u] else set())
            folder = unit_folder(ref, u, lvl, year)
            for fpl in plan_packs(random.Random(f"layout-{seed}-{year}-{u}"), year, u, folder):
                fpl.sheets = [s for s in fpl.sheets if isinstance(s, Grid) or s.form in forms]
                if not any(isinstance(s, SheetPlan) for s in fpl.sheets):
                    continue
                fpl.mtime = report_mtime(year, u)
                fpl.wr_seed = f"write-{seed}-{fpl.rel}"
                for s in fpl.sheets:
                    if isinstance(s, SheetPlan):
                        s.level = lvl
                        sheet[(u, s.form)] = s
                        sheet_fmt[(u, s.form)] = fpl.fmt
                files.append(fpl)
            for v in sup[u]:
                sheet[(u, "HO_TRO")].rows.append(WRow(form="HO_TRO", values=v))

        # 4. register rows
        vrng = random.Random(f"values-{seed}-{year}")
        ent_of: dict[int, Ent] = {}
        for u, lvl in units:
            for etype in ("HTX", "THT"):
                for e in register[(u, etype)]:
                    v = row_values(e, year, e.status[year], vrng)
                    if etype == "THT":
                        for c in ("reg_code", "kind", "rating", "ocop_stars", "high_tech"):
                            v.pop(c)
                    old = None
                    x = vrng.random()
                    if x < 0.012:
                        v["commune"] = None
                    elif lvl == "district" and x < 0.022:
                        known = {commune_key(ref.former[c]["commune_name"]) for c in ref.former_of(u)}
                        v["commune"] = vrng.choice([p for p in UNKNOWN_PLACES if commune_key(p) not in known])
                    elif lvl == "district":
                        v["commune"] = spell_former(ref.former[e.old_commune], vrng)  # type: ignore[index]
                        old = e.old_commune
                    else:
                        v["commune"] = spell_today(ref.communes[u], vrng)
                    sp_ = sheet[(u, etype)]
                    for c in FORM_COLUMNS[etype]:
                        if c not in sp_.layout.columns:
                            v[c] = False if c == "high_tech" else None
                    w = WRow(form=etype, values=v, old_commune=old, commune_set=True)
                    sp_.rows.append(w)
                    ent_of[id(w)] = e
        year_rows = [w for (u, f), s in sheet.items() if f in ("HTX", "THT") for w in s.rows]
        for w in year_rows:
            if isinstance(w.values.get("workers"), float):
                w.values["workers"] = max(1, round(w.values["members"] * w.values["workers"]))
            if isinstance(w.values.get("members"), float):
                w.values["members"] = max(1, round(w.values["members"]))
        for etype in ("HTX", "THT"):
            rows = [w for w in year_rows if w.form == etype and ent_of[id(w)].area == "17" and w.values["status"] == "active"]
            mt, rv, pf, inc = HB_TARGETS[(etype, year)]
            calibrate(rows, mt * k, rv, pf, inc)
        for w in year_rows:
            e = ent_of[id(w)]
            if w.values["status"] != "active":
                for c in ("revenue", "profit"):
                    if w.values.get(c) is not None:
                        w.values[c] = float(round(w.values[c]))
                if w.values.get("income") is not None:
                    w.values["income"] = round(w.values["income"] * 4, 1)
            elif e.area != "17":           # the small areas: plausible, not calibrated
                for c in ("revenue", "profit"):
                    if w.values.get(c) is not None:
                        w.values[c] = float(round(w.values[c]))
                if w.values.get("income") is not None:
                    w.values["income"] = round(w.values["income"] * (4.5 if e.etype == "HTX" else 1.5)
                                               * (1 + 0.03 * (year - 2023)), 2)
        cand = [w for w in year_rows if w.form == "HTX" and w.values["status"] == "active"
                and "high_tech" in sheet[(ent_of[id(w)].unit(year), "HTX")].layout.columns]
        hb_cand = sorted((w for w in cand if ent_of[id(w)].area == "17"), key=lambda w: (-ent_of[id(w)].tech, ent_of[id(w)].uid))
        for w in hb_cand[:HB_HIGH_TECH[year] * k]:
            w.values["high_tech"] = True
        for w in cand:
            if ent_of[id(w)].area != "17" and ent_of[id(w)].tech > 0.94:
                w.values["high_tech"] = True

        # 5. planted invalid rows (a handful, counted in no indicator)
        def plant(unit: str, form: str, values: dict[str, Any], raw: dict[str, Any], expect: list[tuple[str, str]],
                  pos: float | None = None) -> None:
            sp_ = sheet[(unit, form)]
            i = int(len(sp_.rows) * (pos if pos is not None else bad.uniform(0.2, 0.8)))
            sp_.rows.insert(i, WRow(form=form, values=values, raw=raw, expect=expect, valid=False))

        def cell(unit: str) -> str:
            if level_of[unit] == "commune":
                return ref.communes[unit]["commune_name"]
            return spell_former(ref.former[bad.choice(places(unit))], bad)

        def xlsx_unit(form: str, prefer: list[str]) -> str:
            """The first of `prefer` (else any unit of that area) whose `form` sheet is in an .xlsx file."""
            area = area_of[prefer[0]]
            others = [u for u, _ in units if area_of[u] == area and u not in prefer]
            return next(u for u in prefer + others if (u, form) in sheet and sheet_fmt[(u, form)] == "xlsx")

        if year == 2022:
            u = xlsx_unit("HTX", ["154", "153", "159"])
            plant(u, "HTX", _fake_register_row("HTX", year, cell(u), "HTX Dịch vụ nông nghiệp Suối Mơ", fresh_code("5400")),
                  {"established_on": "30/02/2022"}, [("established_on", "invalid_date")])
        elif year == 2023:
            u = xlsx_unit("HTX", ["233", "230", "236"])
            plant(u, "HTX", _fake_register_row("HTX", year, cell(u), "HTX Chè Đất Tổ Phù Ninh", fresh_code("2600")),
                  {"members": -3}, [("members", "negative_value")])
        elif year == 2024:
            u = xlsx_unit("HTX", ["152", "153", "154"])
            dup = fresh_code("5400")
            v1 = _fake_register_row("HTX", year, cell(u), "HTX Nông nghiệp Đồi Bương", dup)
            v2 = dict(v1, name="HTX Dịch vụ tổng hợp Đồi Bương", members=21)
            plant(u, "HTX", v1, {}, [("reg_code", "duplicate_code")], pos=0.25)
            plant(u, "HTX", v2, {}, [("reg_code", "duplicate_code")], pos=0.75)
            u = xlsx_unit("HO_TRO", ["158", "159", "150"])
            e = active[u][0]
            plant(u, "HO_TRO", {"reg_code": e.reg_code, "htx_name": e.name, "support_type": "other", "amount": 75.0,
                                "participants": None, "decision_no": "388/QĐ-UBND", "allocated_on": date(2024, 8, 6)},
                  {"support_type": "Hỗ trợ giống cây trồng"}, [("support_type", "unknown_category")])
        elif year == 2025:
            plant("05266", "HTX", _fake_register_row("HTX", year, cell("05266"), "HTX Nông sản Mường Vang Xanh", None),
                  {"reg_code": None}, [("reg_code", "missing_value")])
            u = xlsx_unit("HTX", ["04831", "04846", "04849"])
            plant(u, "HTX", _fake_register_row("HTX", year, cell(u), "HTX Thủy sản Sông Đà Xanh", fresh_code("5400")),
                  {"revenue": Err("#N/A")}, [("revenue", "excel_error")])
        elif year == 2026:
            u = xlsx_unit("HTX", ["05287", "05290", "05293"])
            plant(u, "HTX", _fake_register_row("HTX", year, cell(u), "HTX Dược liệu Mường Vang", fresh_code("5400")),
                  {"established_on": date(2027, 2, 1)}, [("established_on", "date_after_report_year")])
            u = xlsx_unit("THT", ["04846", "04849", "04873", "04876"])
            plant(u, "THT", _fake_register_row("THT", year, cell(u), "Tổ hợp tác nuôi ong Bản Khả", None),
                  {"status": "Đang củng cố"}, [("status", "unknown_category")])

        # 6. the province plan; the files the reform rejects
        lay = make_layout(random.Random(f"layout-{seed}-{year}-plan"), "CHI_TIEU", "official" if year % 2 else "plain", {})
        lay.total = None
        prov = "17" if year < REFORM_YEAR else "25"
        sp_ = SheetPlan(form="CHI_TIEU", layout=lay, name="Kế hoạch" if year % 2 else "Sheet1", year=year, district=None,
                        level="province", province=prov)
        for code, label, unit, tgt in PLANS_EXT[year]:
            sp_.rows.append(WRow(form="CHI_TIEU", values={"code": code, "label": label, "unit": unit, "target": tgt}))
        rel = f"{year}/{PROVINCE_FOLDERS_EXT[year]}/{PLAN_FILES_EXT[year]}"
        files.append(FilePlan(rel=rel, fmt="xlsx", sheets=[sp_], mtime=datetime(year, 1, 20, 9, 0, 0), wr_seed=f"write-{seed}-{rel}"))
        wrong = {2024: ("05266", "commune", "Xã Lạc Sơn", "danh-sach-htx-2024.xlsx", "commune_before_reform"),
                 2025: ("157", "district", "Huyện Lạc Sơn", "Bao cao KTTT 2025.xlsx", "district_after_reform")}.get(year)
        if wrong:
            u, lvl, folder, name, reason = wrong
            sp_ = SheetPlan(form="HTX", layout=make_layout(random.Random(f"layout-{seed}-{year}-wrong"), "HTX", "plain", {}),
                            name="HTX", year=year, district=u, counted=False, level=lvl)
            for i in range(3):
                commune = ref.communes["05266"]["commune_name"] if lvl == "commune" else spell_former(
                    ref.former[bad.choice(places("157"))], bad)
                sp_.rows.append(WRow(form="HTX", values=_fake_register_row(
                    "HTX", year, commune, f"HTX Nông nghiệp Lạc Sơn {i + 1}", fresh_code("5400")), counted=False))
            rel = f"{year}/{folder}/{name}"
            files.append(FilePlan(rel=rel, fmt="xlsx", sheets=[sp_], rejected=reason, mtime=report_mtime(year, u),
                                  wr_seed=f"write-{seed}-{rel}"))
    return files


# ----------------------------------------------------------------------------- a small second province

TAX_PREFIX = {"17": "5400", "25": "2600", "26": "2500", "48": "0400", "49": "4000"}
PLAIN_WORDS = ["Thành Công", "Phát Đạt", "Đoàn Kết", "Hưng Thịnh", "Tân Tiến", "Bình Minh", "Hợp Lực", "Xanh",
               "An Phú", "Nam Tiến", "Đồng Xanh", "Quyết Thắng", "Thành Đạt", "Vạn Phúc", "Thịnh Vượng"]


def generate_small_province(out_dir: Path, province_code: str, seed: int = 7) -> Truth:
    """A small sample of another province of today (e.g. Đà Nẵng 48 = former 48 + 49), for a warehouse built
    for that province by setting: 2023-2024 district reports of 3 districts (taken from two former provinces
    when it has several), 2025 commune reports of 4 communes of today, plain layouts (one workbook per unit:
    HTX, THT, HO_TRO), 5-10 HTX and 2-4 THT per unit; cooperatives keep their reg_code across the reform.
    Year folders under out_dir are replaced. Returns the ground truth (same format as `generate`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for child in out_dir.iterdir():
        if child.is_dir() and child.name.isdigit() and len(child.name) == 4:
            shutil.rmtree(child)
    ref = load_ref()
    if not ref.communes_of(province_code):
        raise ValueError(f"no commune of today in province {province_code!r}")
    areas = ref.areas_of(province_code)
    areas.sort(key=lambda a: (a != province_code, a))          # the namesake former province first
    r = random.Random(f"small-{province_code}-{seed}")
    pop = Population(random.Random(f"small-pop-{province_code}-{seed}"), 1)
    valid = [ref.districts_valid({a}, 2023) for a in areas]
    valid = [[d for d in ds if d in ref.districts_valid({ref.districts[d]["province_code"]}, 2024) and ref.former_of(d)]
             for ds in valid]
    districts: list[str] = []
    for i in range(3):                                         # 2 from the first area, 1 from the next
        pool = [d for d in valid[0 if i < 2 or len(valid) == 1 else 1] if d not in districts] or \
            [d for ds in valid for d in ds if d not in districts]
        districts.append(r.choice(pool))
    mine = set(ref.communes_of(province_code))
    # the communes of today that report 2025: the main successors of the districts' former communes
    weight: dict[str, int] = {}
    for d in districts:
        for c in ref.former_of(d):
            new = ref.default_new[c]
            if new in mine:
                weight[new] = weight.get(new, 0) + 1
    communes: list[str] = []
    for d in districts:                                        # one per district first, then the largest
        tops = sorted({ref.default_new[c] for c in ref.former_of(d)} & mine - set(communes), key=lambda c: (-weight[c], c))
        if tops and len(communes) < 4:
            communes.append(tops[0])
    for c in sorted(weight, key=lambda c: (-weight[c], c)):
        if len(communes) < 4 and c not in communes:
            communes.append(c)
    communes.sort()
    chosen = set(communes)

    def place_for(d: str) -> str:
        good = [c for c in ref.former_of(d) if ref.default_new[c] in chosen and c not in ref.split]
        rest = [c for c in ref.former_of(d) if c not in ref.split] or ref.former_of(d)
        return r.choice(good) if good and r.random() < 0.75 else r.choice(rest)

    def new_ent(etype: str, est: date, unit: str, area: str, old: str | None = None, today: str | None = None) -> Ent:
        place = ref.former[old]["commune_name"] if old else ref.communes[today]["commune_name"]  # type: ignore[index]
        e = pop.make(etype, est, unit, commune=place, words=PLAIN_WORDS, code_prefix=TAX_PREFIX.get(area, f"{area}00"))
        e.home, e.area, e.old_commune, e.today = unit, area, old, today
        if e.ocop_from is not None:
            e.ocop_from = max(e.ocop_from, est.year + 1)
        return e

    for d in districts:
        area = ref.districts[d]["province_code"]
        for etype, lo, hi in (("HTX", 5, 9), ("THT", 2, 3)):
            for i in range(r.randint(lo, hi)):
                fresh = i == 0
                est = pop.rand_date(2023, 2023) if fresh else pop.rand_date(2008 if etype == "HTX" else 2014, 2022)
                e = new_ent(etype, est, d, area, old=place_for(d))
                e.status[2023] = "suspended" if (not fresh and r.random() < 0.1) else "active"
    for year in (2024, 2025):
        for e in [e for e in pop.ents if year - 1 in e.status]:
            s, u = e.status[year - 1], r.random()
            if s == "active":
                e.status[year] = "suspended" if u < 0.06 else "dissolved" if u < 0.08 else "active"
            elif s == "suspended":
                e.status[year] = "dissolved" if u < 0.3 else "active" if u < 0.5 else "suspended"
        if year == 2024:
            for d in districts:
                e = new_ent("HTX", pop.rand_date(2024, 2024), d, ref.districts[d]["province_code"], old=place_for(d))
                e.status[2024] = "active"
        else:
            for e in pop.ents:
                if e.old_commune is not None:
                    e.today = ref.default_new[e.old_commune]
            for c in communes:
                area = ref.communes[c]["area_code"]
                for etype, lo, hi in (("HTX", 5, 10), ("THT", 2, 4)):
                    here = [e for e in pop.ents if e.etype == etype and 2025 in e.status and e.today == c]
                    want = r.randint(lo, hi)
                    for i in range(max(0, want - len(here))):
                        est = pop.rand_date(2025, 2025) if i == 0 else pop.rand_date(2010, 2024)
                        e = new_ent(etype, est, c, area, today=c)
                        e.status[2025] = "active"

    # the files: one plain workbook per unit and year
    lay_rng = random.Random(f"small-layout-{province_code}-{seed}")
    val_rng = random.Random(f"small-values-{province_code}-{seed}")
    folder_names: dict[str, str] = {}
    for d in districts:
        same = [x for a in areas for x in ref.districts_valid({a}, 2023)
                if fold(ref.districts[x]["district_name"]) == fold(ref.districts[d]["district_name"])]
        folder_names[d] = ref.unit_title(d) if len(same) == 1 else d
    for c in communes:
        same = [x for x in mine if commune_key(ref.communes[x]["commune_name"]) == commune_key(ref.communes[c]["commune_name"])]
        folder_names[c] = ref.communes[c]["commune_name"] if len(same) == 1 else c
    files: list[FilePlan] = []
    dec = [200]
    for year, units, level in ((2023, districts, "district"), (2024, districts, "district"), (2025, communes, "commune")):
        for u in units:
            regs = {t: sorted((e for e in pop.ents if e.etype == t and year in e.status and e.unit(year) == u),
                              key=lambda e: e.uid) for t in ("HTX", "THT")}
            sheets: list[SheetPlan] = []
            for form, name in (("HTX", "HTX"), ("THT", "THT"), ("HO_TRO", "Hỗ trợ")):
                sheets.append(SheetPlan(form=form, layout=make_layout(lay_rng, form, "plain", {}), name=name, year=year,
                                        district=u, level=level))
            for form, sp_ in zip(("HTX", "THT"), sheets):
                for e in regs[form]:
                    v = row_values(e, year, e.status[year], val_rng)
                    if form == "THT":
                        for c in ("reg_code", "kind", "rating", "ocop_stars", "high_tech"):
                            v.pop(c)
                    if level == "district":
                        v["commune"] = spell_former(ref.former[e.old_commune], val_rng)  # type: ignore[index]
                    else:
                        v["commune"] = ref.communes[u]["commune_name"]
                    round_reported(v, form)
                    if form == "HTX" and v["status"] == "active" and e.tech > 0.9:
                        v["high_tech"] = True
                    sp_.rows.append(WRow(form=form, values=v, old_commune=e.old_commune if level == "district" else None,
                                         commune_set=True))
            act = [e for e in regs["HTX"] if e.status[year] == "active"]
            sups = []
            for e in act[:2]:
                dec[0] += val_rng.randrange(3, 20)
                est_new = e.established_on.year == year
                sups.append({"reg_code": e.reg_code, "htx_name": e.name,
                             "support_type": "establishment" if est_new else "training",
                             "amount": float(val_rng.choice([30, 50, 60])), "participants": None if est_new else val_rng.randint(8, 30),
                             "decision_no": f"{dec[0]}/QĐ-UBND",
                             "allocated_on": max(e.established_on, date(year, 1, 1)) + timedelta(days=val_rng.randrange(0, 60))})
            sheets[2].rows = [WRow(form="HO_TRO", values=v) for v in sorted(sups, key=lambda v: v["allocated_on"])]
            sheets = [s for s in sheets if s.rows]
            rel = f"{year}/{folder_names[u]}/bao-cao-kttt-{year}.xlsx"
            files.append(FilePlan(rel=rel, fmt="xlsx", sheets=list(sheets), mtime=report_mtime(year, u),
                                  wr_seed=f"small-write-{province_code}-{seed}-{rel}"))
    truth = Truth(seed=seed, scale=1, forms={f: [] for f in FORM_COLUMNS})
    write_files(out_dir, files, truth, random.Random(f"small-write-{province_code}-{seed}"))
    return truth


def truth_path_for(out_dir: Path) -> Path:
    from coop.paths import PROJECT_ROOT, DEFAULT_RAW_DIR
    if Path(out_dir).resolve() == DEFAULT_RAW_DIR.resolve():
        return PROJECT_ROOT / "data" / "sample" / "ground_truth.json"
    return Path(out_dir).resolve().parent / "ground_truth.json"


def round_reported(v: dict[str, Any], form: str) -> None:
    """The figures of one register row as a unit reports them: whole members and workers
    (workers drawn as a share of members), whole million VND, income per month scaled."""
    v["members"] = max(1, round(v["members"]))
    if v.get("workers") is not None:
        v["workers"] = max(1, round(v["members"] * v["workers"]))
    for c in ("revenue", "profit"):
        if v.get(c) is not None:
            v[c] = float(round(v[c]))
    if v.get("income") is not None:
        v["income"] = round(v["income"] * (4.5 if form == "HTX" else 1.5), 2)


def main(out: Path = Path("data/raw"), seed: int | None = None, scale: int = 1, truth: Path | None = None,
         province: str | None = None) -> None:
    if province and province != "25":
        t = generate_small_province(out, province, seed=7 if seed is None else seed)
    else:
        t = generate(out, seed=2020 if seed is None else seed, scale=scale)
    tp = truth or truth_path_for(out)
    tp.parent.mkdir(parents=True, exist_ok=True)
    tp.write_text(t.to_json(), encoding="utf-8")
    n = {f: len(v) for f, v in t.forms.items()}
    print(f"sample province written to {out}: {len(t.files)} files, valid rows {n}, "
          f"{len(t.invalid_rows)} invalid cells, {len(t.rejected_files)} rejected files; truth: {tp}")


def _cli() -> None:
    import typer

    app = typer.Typer(add_completion=False)

    @app.command()
    def run(out: Path = typer.Option(Path("data/raw"), "--out", help="raw folder to (re)write"),
            seed: int | None = typer.Option(None, "--seed", help="default 2020 (7 with --province)"),
            scale: int = typer.Option(1, "--scale", help="multiply the number of cooperatives (benchmarks)"),
            truth: Path | None = typer.Option(None, "--truth", help="where to write ground_truth.json"),
            province: str | None = typer.Option(None, "--province",
                                                help="another province of today (GSO code, e.g. 48): the small sample")) -> None:
        """Generate the sample province and its ground truth."""
        main(out, seed, scale, truth, province)

    app()


if __name__ == "__main__":
    _cli()
