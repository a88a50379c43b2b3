-- @description Chỉ tiêu kinh tế tập thể theo lĩnh vực — sector indicators. Grain: year × sector × entity_type (THT by the sector they report, like HTX)
SELECT
    year,
    sector,
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
WHERE grain = 'sector'
ORDER BY year, sector, entity_type
