-- @description HTX thành lập mới chưa được bố trí kinh phí hỗ trợ — funding backlog as of 31 December of Y: active HTX (unions included) established in Y−window+1..Y (window = ref.settings backlog_window_years, default 3) with no establishment support allocated on or before 31/12/Y in any HO_TRO form of any year and unit (district or commune): a cooperative is followed by its registration code across the 2025 reform. Grain: year × awaiting HTX
-- @column year: Năm báo cáo — report year Y (backlog as of 31 December of Y)
-- @column district_code: Mã huyện — GSO code of the district whose year-Y register lists the HTX (NULL from 2025: communes report)
-- @column unit_code: Mã đơn vị báo cáo — the unit (district up to 2024, commune from 2025) whose year-Y register lists the HTX
-- @column area_code: Mã tỉnh cũ — former-province area of that unit
-- @column commune_code: Mã xã hiện nay — commune of today of the HTX (NULL when its commune cell does not resolve)
-- @column reg_code: Mã số HTX — registration code
-- @column name: Tên HTX — cooperative name
-- @column established_on: Ngày thành lập — date established
-- @column waiting_days: Số ngày chờ — days waiting: 31/12/Y − established_on
-- @column kind: Loại hình — htx | union
-- @column sector: Lĩnh vực — sector code
-- @column commune: Xã — commune
WITH settings AS (
    SELECT coalesce(max(TRY_CAST(trim(value) AS INTEGER)), 3) AS window_years
    FROM ref.settings
    WHERE key = 'backlog_window_years'
),
establishment AS (
    SELECT reg_code, allocated_on
    FROM core.fct_support
    WHERE support_type = 'establishment'
)
SELECT
    r.year,
    r.district_code,
    d.district_name,
    r.reg_code,
    r.name,
    r.established_on,
    date_diff('day', r.established_on, make_date(r.year, 12, 31)) AS waiting_days,
    r.kind,
    r.sector,
    r.commune,
    r.unit_code,
    r.area_code,
    r.commune_code
FROM core.fct_register r
CROSS JOIN settings s
LEFT JOIN core.dim_district d ON d.district_code = r.district_code
WHERE r.entity_type = 'HTX'
  AND r.is_active
  AND r.is_counted  -- listed by two units in one year: once, in the unit that counts it
  AND year(r.established_on) BETWEEN r.year - s.window_years + 1 AND r.year
  AND NOT EXISTS (
        SELECT 1 FROM establishment e
        WHERE e.reg_code = r.reg_code
          AND e.allocated_on <= make_date(r.year, 12, 31))
ORDER BY r.year, r.unit_code, r.reg_code
