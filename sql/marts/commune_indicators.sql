-- @description Chỉ tiêu theo xã, phường hiện nay — indicators per commune of today, restated before 2025 through the former commune named in each register row (core.unit_lineage). Rows whose commune cell is missing or does not resolve count only at district, area and province level (see core.fct_register.commune_match). Grain: year × commune × entity_type
-- @column commune_code: Mã xã — GSO code of the commune of today
-- @column commune_name: Tên xã — its name
-- @column area_code: Mã tỉnh cũ — former province the commune lies in
-- @column province_code: Mã tỉnh — province of today
-- @column approximate: Gần đúng — some row counted here came through a former commune split between several communes of today (assigned to the dataset's default one)
SELECT
    a.year,
    a.commune_code,
    u.unit_name AS commune_name,
    u.area_code,
    u.province_code,
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
    a.approximate
FROM core.agg_indicators a
LEFT JOIN core.dim_unit u ON u.unit_code = a.commune_code
WHERE a.grain = 'commune' AND a.commune_code IS NOT NULL
ORDER BY a.year, a.commune_code, a.entity_type
