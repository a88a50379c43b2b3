-- @description Chỉ tiêu kinh tế tập thể toàn tỉnh — province indicators. Grain: year × entity_type; a year × entity_type with no register rows has no line
SELECT
    year,
    entity_type,
    new_formed,
    active_count,
    members,
    workers,
    avg_revenue_mvnd,
    avg_profit_mvnd,
    avg_income_mvnd_month,
    revenue_growth_pct,
    income_growth_pct,
    ocop_count,
    high_tech_count
FROM core.agg_indicators
WHERE grain = 'province'
ORDER BY year, entity_type
