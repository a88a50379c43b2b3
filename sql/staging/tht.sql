-- @description Danh sách tổ hợp tác (đã làm sạch) — cooperative groups register, one row per accepted register row, year-Y snapshot as of 31/12/Y
-- @column year: Năm báo cáo — report year (register as of 31 December)
-- @column unit_code: Mã đơn vị báo cáo — GSO code of the reporting unit: district (3 digits, years up to 2024) or commune (5 digits, from 2025)
-- @column name: Tên tổ hợp tác — group name
-- @column commune: Xã — commune
-- @column established_on: Ngày thành lập / chứng thực hợp đồng — date established
-- @column sector: Lĩnh vực — sector code
-- @column status: Tình trạng — status: active | suspended | dissolved
-- @column members: Số thành viên — members, persons
-- @column workers: Số lao động — workers, persons (NULL = not reported)
-- @column revenue: Doanh thu — revenue, million VND a year
-- @column profit: Lợi nhuận — profit, million VND a year (may be negative)
-- @column income: Thu nhập bình quân — average income, million VND per person a month
SELECT
    year::INTEGER AS year,
    unit_code,
    name,
    commune,
    established_on,
    sector,
    status,
    members,
    workers,
    revenue,
    profit,
    income,
    source_file,
    sheet,
    row_number
FROM raw.tht
