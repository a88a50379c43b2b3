-- @description Sổ đăng ký HTX và THT hợp nhất — HTX (cooperatives and unions) and THT (cooperative groups) register rows unioned, one row per register row per year, with the flags the indicators use
-- @column reg_code: Mã số HTX — registration code (NULL for THT)
-- @column name: Tên — name of the cooperative or group
-- @column commune: Xã — commune
-- @column kind: Loại hình HTX — htx | union for HTX; NULL for THT
-- @column established_on: Ngày thành lập — date established
-- @column status: Tình trạng — status: active | suspended | dissolved
-- @column is_active: Đang hoạt động — status is active in the year-Y register
-- @column is_new: Thành lập mới — established in the report year (any status)
-- @column members: Số thành viên — members, persons
-- @column workers: Số lao động — workers, persons (NULL = not reported)
-- @column revenue: Doanh thu — revenue, million VND a year
-- @column profit: Lợi nhuận — profit, million VND a year
-- @column income: Thu nhập bình quân — average income, million VND per person a month
-- @column income_weight: Trọng số thu nhập — weight of the income in the weighted mean: workers when reported, else members (persons)
-- @column ocop_stars: Sản phẩm OCOP — OCOP stars (NULL for THT or no OCOP product)
-- @column high_tech: Ứng dụng công nghệ cao — applies high technology (NULL for THT)
WITH unioned AS (
    SELECT year, 'HTX' AS entity_type, district_code, reg_code, name, commune, kind,
           established_on, sector, status, members, workers, revenue, profit, income,
           ocop_stars, high_tech, source_file, sheet, row_number
    FROM staging.htx
    UNION ALL
    SELECT year, 'THT' AS entity_type, district_code, NULL AS reg_code, name, commune, NULL AS kind,
           established_on, sector, status, members, workers, revenue, profit, income,
           NULL AS ocop_stars, NULL AS high_tech, source_file, sheet, row_number
    FROM staging.tht
)
SELECT
    year,
    entity_type,
    district_code,
    reg_code,
    name,
    commune,
    kind,
    established_on,
    sector,
    status,
    status = 'active' AS is_active,
    year(established_on) = year AS is_new,
    members,
    workers,
    revenue,
    profit,
    income,
    coalesce(workers, members) AS income_weight,
    ocop_stars,
    high_tech,
    source_file,
    sheet,
    row_number
FROM unioned
