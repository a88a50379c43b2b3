-- @description Chỉ tiêu kinh tế tập thể theo huyện — district indicators. Grain: year × district × entity_type; a district has lines only in the years it sent a register (a merged district only while it existed)
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
    a.high_tech_count
FROM core.agg_indicators a
LEFT JOIN core.dim_district d ON d.district_code = a.district_code
WHERE a.grain = 'district'
ORDER BY a.year, a.district_code, a.entity_type
