-- @description Chỉ tiêu theo địa bàn tỉnh cũ — indicators per former-province area: the one comparable series across the 2025 reform (districts of the former province up to 2024, the communes of today lying in it from 2025). Grain: year × area × entity_type
-- @column area_code: Mã tỉnh cũ — GSO code of the former province (area)
-- @column area_name: Tên tỉnh cũ — its name
-- @column province_code: Mã tỉnh hiện nay — the province of today the area belongs to
SELECT
    a.year,
    a.area_code,
    p.province_name AS area_name,
    coalesce(p.current_province_code, a.area_code) AS province_code,
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
    a.high_tech_count
FROM core.agg_indicators a
LEFT JOIN ref.provinces p ON p.province_code = a.area_code AND p.era = 'former'
WHERE a.grain = 'area' AND a.area_code IS NOT NULL
ORDER BY a.year, a.area_code, a.entity_type
