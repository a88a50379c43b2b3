-- @description Chỉ tiêu kinh tế tập thể toàn tỉnh — province indicators. Grain: year × province × entity_type, the province as it was that year (17 Hòa Bình for 2020; 25 Phú Thọ for 2025); a warehouse holding one province's history has one line per year × entity_type; a year × province × entity_type with no register rows has no line. Across the 2025 reform a province of today formed from several former ones has no growth for 2025 (see marts.area_indicators and marts.current_province_indicators for the continuous series)
-- @column province_code: Mã tỉnh — GSO code of the province as it was that year
-- @column province_name: Tên tỉnh — its name
SELECT
    a.year,
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
    a.province_code,
    p.province_name
FROM core.agg_indicators a
LEFT JOIN ref.provinces p
    ON p.province_code = a.province_code
   AND p.era = CASE WHEN a.year >= 2025 THEN 'current' ELSE 'former' END
WHERE a.grain = 'province' AND a.province_code IS NOT NULL
ORDER BY a.year, a.province_code, a.entity_type
