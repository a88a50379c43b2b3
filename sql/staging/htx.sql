-- @description Danh sách HTX, liên hiệp HTX (đã làm sạch) — cooperatives and unions register, one row per accepted register row, year-Y snapshot as of 31/12/Y
-- @column year: Năm báo cáo — report year (register as of 31 December)
-- @column unit_code: Mã đơn vị báo cáo — GSO code of the reporting unit: district (3 digits, years up to 2024) or commune (5 digits, from 2025)
-- @column reg_code: Mã số HTX — registration / tax code (text, leading zeros kept)
-- @column name: Tên HTX — cooperative name
-- @column commune: Xã, phường, thị trấn — commune
-- @column kind: Loại hình — kind: htx (cooperative) | union (union of cooperatives)
-- @column established_on: Ngày thành lập — date established
-- @column sector: Lĩnh vực — sector code
-- @column status: Tình trạng — status: active | suspended | dissolved
-- @column members: Số thành viên — members, persons
-- @column workers: Số lao động — regular workers, persons (NULL = not reported)
-- @column revenue: Doanh thu — revenue, million VND a year
-- @column profit: Lợi nhuận — profit, million VND a year (may be negative)
-- @column income: Thu nhập bình quân — average income, million VND per person a month
-- @column rating: Xếp loại — rating: good | fair | average | weak
-- @column ocop_stars: Sản phẩm OCOP — OCOP stars (3, 4, 5); NULL = no OCOP product
-- @column high_tech: Ứng dụng công nghệ cao — applies high technology
SELECT
    year::INTEGER AS year,
    unit_code,
    reg_code,
    name,
    commune,
    coalesce(kind, 'htx') AS kind,
    established_on,
    sector,
    status,
    members,
    workers,
    revenue,
    profit,
    income,
    rating,
    ocop_stars,
    coalesce(high_tech, false) AS high_tech,
    source_file,
    sheet,
    row_number
FROM raw.htx
