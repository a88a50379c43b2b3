-- @description Chỉ tiêu kinh tế tập thể theo huyện — district indicators. Grain: year × district × entity_type, report years up to 2024 (no district level from 1 July 2025); a district has lines only in the years it sent a register (a merged district only while it existed)
-- @column province_code: Mã tỉnh — the district's (former) province
SELECT
    a.year,
    a.district_code,
    d.district_name,
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
    d.province_code
FROM core.agg_indicators a
LEFT JOIN core.dim_district d ON d.district_code = a.district_code
WHERE a.grain = 'district' AND a.district_code IS NOT NULL
ORDER BY a.year, a.district_code, a.entity_type
