-- @description Chỉ tiêu toàn bộ phạm vi kho — indicators over every unit this warehouse serves: today's province restated (the same figures as marts.current_province_indicators for a one-province warehouse), the whole country when the province setting is VN. Grain: year × entity_type
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
WHERE grain = 'all'
ORDER BY year, entity_type
