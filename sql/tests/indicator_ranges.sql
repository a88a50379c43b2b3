-- severity: error
-- description: indicator values are plausible at every grain: counts ≥ 0, OCOP and high-tech counts ≤ active HTX and NULL for THT, averages of income ≥ 0
SELECT grain, year, entity_type, district_code, sector, new_formed, active_count, ocop_count, high_tech_count,
       avg_income_mvnd_month, avg_revenue_mvnd
FROM core.agg_indicators
WHERE new_formed < 0 OR active_count < 0
   OR (entity_type = 'THT' AND (ocop_count IS NOT NULL OR high_tech_count IS NOT NULL))
   OR (entity_type = 'HTX' AND (ocop_count IS NULL OR high_tech_count IS NULL
                                OR ocop_count > active_count OR high_tech_count > active_count))
   OR avg_income_mvnd_month < 0
   OR avg_revenue_mvnd < 0
