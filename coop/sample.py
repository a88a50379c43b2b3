"""Deterministic sample province (Hòa Bình, 2018–2021) with its ground truth.

`python -m coop.sample --out data/raw [--seed N] [--scale K]` writes district workbooks as
districts really send them (see `../shared/spec/forms.md`) and the ground truth (every valid
row with its file, sheet and Excel row number; planted invalid rows; rejected files;
superseded forms; plan rows) as JSON to `data/sample/ground_truth.json`.

The generator is deliberately independent of the pipeline's reading code: it writes the
files straight from the contract with xlsxwriter (.xlsx), xlwt (.xls), odfpy (.ods) and csv.
It is seeded (`random.Random`), uses no wall clock, and fixes the timestamps inside the
files, so a regeneration gives the same truth and the same bytes.

Calibration (scale 1, computed on VALID rows with the warehouse definitions): 2020 and 2021
reproduce the province's reports (see `../shared/reference/`); 2018/2019 are plausible.
"""

from __future__ import annotations

import csv
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

YEARS = (2018, 2019, 2020, 2021)

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
            cols = LINEAGE + FORM_COLUMNS[form]
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

    def district(self, year: int) -> str:
        return "148" if self.home == "151" and year >= 2020 else self.home


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

    def new_code(self) -> str:
        r = self.rng
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

    def make(self, etype: str, year_est: date, district: str, *, sector: str | None = None, union: bool | None = None) -> Ent:
        r = self.rng
        sector = sector or self.sector()
        commune = r.choice(COMMUNES[district])
        if etype == "HTX":
            kind = "union" if (union if union is not None else r.random() < 0.08) else "htx"
            tries = 0
            while True:
                if sector == "credit_fund":
                    name = f"Quỹ tín dụng nhân dân {commune.split(' ', 1)[1] if ' ' in commune else commune}"
                    name = name.replace("Trấn ", "").replace("trấn ", "")
                else:
                    act = r.choice(SECTORS[sector][1])
                    word = r.choice(HTX_WORDS)
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
            code = self.new_code()
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
    unit = "UBND TỈNH HÒA BÌNH" if district is None else (
        f"UBND {'THÀNH PHỐ' if district == '148' else 'HUYỆN'} {dname.replace('Thành phố ', '').upper()}")
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
        r[-1] = f"{DISTRICT_NAME.get(district or '', 'Hòa Bình')}, ngày 15 tháng 01 năm {year + 1}"
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


def write_xlsx(path: Path, grids: list[Grid]) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                         "strings_to_urls": False})
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
    district: str | None
    hidden: bool = False
    rows: list[WRow] = field(default_factory=list)
    counted: bool = True
    rejected: str | None = None               # expected sheet-level reason code (file still read)


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


PACKS = ["official", "official_b", "separate", "misleading", "offset", "noaccent_one"]
FIXED_PACKS = {
    (2018, "155"): "csv3", (2021, "154"): "csv1", (2019, "150"): "xls", (2020, "156"): "ods",
    (2020, "159"): "misleading", (2020, "152"): "resubmission", (2021, "157"): "official",
    (2020, "148"): "official", (2019, "153"): "official_b", (2018, "158"): "offset",
    (2018, "157"): "separate", (2019, "157"): "noaccent_one",
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
    growth = {2018: 0.93, 2019: 0.97, 2020: 1.0, 2021: 1.04}[year]
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

    # 7. write
    truth = Truth(seed=seed, scale=scale, forms={f: [] for f in FORM_COLUMNS})
    wr_rng = random.Random(f"write-{seed}")
    for fpl in files:
        path = out_dir / fpl.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        grids: list[Grid] = []
        for s in fpl.sheets:
            if isinstance(s, Grid):
                grids.append(s)
                if fpl.rejected is None:
                    truth.ignored_sheets.append({"source_file": fpl.rel, "sheet": s.name, "reason_code": "unrecognized_sheet"})
                continue
            cm = CellMaker(wr_rng, s.layout, csv_mode=fpl.fmt == "csv")
            g = build_grid(s.layout, s.rows, cm, s.year, s.district, s.name)
            g.hidden = s.hidden
            grids.append(g)
        if fpl.fmt == "xlsx":
            write_xlsx(path, grids)
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
        f.sort(key=lambda r: (r["year"], r["district_code"] or "", r["source_file"], r["sheet"], r["row_number"]))
    truth.invalid_rows.sort(key=lambda r: (r["source_file"], r["sheet"], r["row_number"], r["column_name"]))
    return truth


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
    row: dict[str, Any] = {"year": s.year, "district_code": s.district, "source_file": rel, "sheet": s.name,
                           "row_number": w.row_number}
    if s.form == "CHI_TIEU":
        raw, lo, hi = _target_text(v["target"])
        row.update(code=v["code"], label=v["label"], unit=v["unit"], target_raw=raw, target_min=lo, target_max=hi)
        return row
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


def truth_path_for(out_dir: Path) -> Path:
    from coop.paths import PROJECT_ROOT, DEFAULT_RAW_DIR
    if Path(out_dir).resolve() == DEFAULT_RAW_DIR.resolve():
        return PROJECT_ROOT / "data" / "sample" / "ground_truth.json"
    return Path(out_dir).resolve().parent / "ground_truth.json"


def main(out: Path = Path("data/raw"), seed: int = 2020, scale: int = 1, truth: Path | None = None) -> None:
    t = generate(out, seed=seed, scale=scale)
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
            seed: int = typer.Option(2020, "--seed"),
            scale: int = typer.Option(1, "--scale", help="multiply the number of cooperatives (benchmarks)"),
            truth: Path | None = typer.Option(None, "--truth", help="where to write ground_truth.json")) -> None:
        """Generate the sample province and its ground truth."""
        main(out, seed, scale, truth)

    app()


if __name__ == "__main__":
    _cli()
