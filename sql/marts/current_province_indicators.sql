-- @description Chỉ tiêu tỉnh hiện nay — today's province (or each of them for VN): direct from 2025 (its communes), restated before as the sum of its former provinces' districts. complete is false when a unit expected that year (districts valid on 31 December up to 2024, today's communes from 2025) sent no register row; areas_missing names the former provinces concerned. Grain: year × province of today × entity_type
-- @column province_code: Mã tỉnh hiện nay — GSO code of the province of today
-- @column province_name: Tên tỉnh — its name
-- @column complete: Đủ báo cáo — every unit expected that year in the province sent at least one register row (HTX or THT)
-- @column areas_missing: Địa bàn thiếu báo cáo — former provinces (codes, comma-separated) where some expected unit sent no register row; NULL when complete
-- @column units_expected: Số đơn vị phải báo cáo — units expected that year (districts up to 2024, communes from 2025)
-- @column units_reported: Số đơn vị đã báo cáo — of those, units with at least one register row
WITH years AS (
    SELECT DISTINCT year FROM core.fct_register
),
expected AS (
    SELECT y.year, u.unit_code, u.area_code,
           coalesce(p.current_province_code, u.province_code) AS province_code
    FROM years y
    JOIN ref.units u
      ON u.level = CASE WHEN y.year >= 2025 THEN 'commune' ELSE 'district' END
     AND (u.valid_from IS NULL OR u.valid_from <= make_date(y.year, 12, 31))
     AND (u.valid_to IS NULL OR u.valid_to > make_date(y.year, 12, 31))
    LEFT JOIN ref.provinces p ON p.province_code = u.area_code AND p.era = 'former'
),
reported AS (
    SELECT DISTINCT year, unit_code FROM core.fct_register
),
coverage AS (
    SELECT e.year, e.province_code,
           count(*) AS units_expected,
           count(r.unit_code) AS units_reported,
           array_to_string(list_sort(list_distinct(list(e.area_code) FILTER (WHERE r.unit_code IS NULL))), ',')
               AS areas_missing
    FROM expected e
    LEFT JOIN reported r ON r.year = e.year AND r.unit_code = e.unit_code
    GROUP BY e.year, e.province_code
)
SELECT
    a.year,
    a.current_province_code AS province_code,
    p.province_name,
    a.entity_type,
    a.new_formed,
    a.active_count,
    a.members,
    a.workers,
    a.avg_revenue_mvnd,
    a.avg_profit_mvnd,
    a.avg_income_mvnd_month,
    a.revenue_growth_pct,
    a.income_growth_pct,
    a.ocop_count,
    a.high_tech_count,
    coalesce(c.units_reported = c.units_expected, false) AS complete,
    nullif(c.areas_missing, '') AS areas_missing,
    c.units_expected,
    c.units_reported
FROM core.agg_indicators a
LEFT JOIN ref.provinces p ON p.province_code = a.current_province_code AND p.era = 'current'
LEFT JOIN coverage c ON c.year = a.year AND c.province_code = a.current_province_code
WHERE a.grain = 'current_province' AND a.current_province_code IS NOT NULL
ORDER BY a.year, a.current_province_code, a.entity_type
