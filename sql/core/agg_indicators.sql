-- @description Chỉ tiêu tổng hợp theo cấp — indicators at every grain (province, district, sector) × year × entity_type in one table, the single definition the marts read
-- @column grain: Cấp tổng hợp — grain: province | district | sector
-- @column district_code: Mã huyện — GSO district code (district grain only, else NULL)
-- @column sector: Lĩnh vực — sector code (sector grain only, else NULL)
WITH grouped AS (
    SELECT
        CASE WHEN GROUPING(district_code) = 0 THEN 'district'
             WHEN GROUPING(sector) = 0 THEN 'sector'
             ELSE 'province' END AS grain,
        year,
        entity_type,
        district_code,
        sector,
        count(*) FILTER (WHERE is_new) AS new_formed,
        count(*) FILTER (WHERE is_active) AS active_count,
        sum(members) FILTER (WHERE is_active)::BIGINT AS members,
        sum(workers) FILTER (WHERE is_active)::BIGINT AS workers,
        avg(revenue) FILTER (WHERE is_active) AS avg_revenue_mvnd,
        avg(profit) FILTER (WHERE is_active) AS avg_profit_mvnd,
        sum(income * income_weight) FILTER (WHERE is_active AND income IS NOT NULL AND income_weight > 0)
            / nullif(sum(income_weight) FILTER (WHERE is_active AND income IS NOT NULL AND income_weight > 0), 0)
            AS avg_income_mvnd_month,
        count(*) FILTER (WHERE is_active AND ocop_stars IS NOT NULL) AS ocop_all,
        count(*) FILTER (WHERE is_active AND high_tech) AS high_tech_all
    FROM core.fct_register
    GROUP BY GROUPING SETS ((year, entity_type), (year, entity_type, district_code), (year, entity_type, sector))
)
SELECT
    g.grain,
    g.year,
    g.entity_type,
    g.district_code,
    g.sector,
    g.new_formed,
    g.active_count,
    g.members,
    g.workers,
    g.avg_revenue_mvnd,
    g.avg_profit_mvnd,
    g.avg_income_mvnd_month,
    CASE WHEN p.avg_revenue_mvnd IS NULL OR p.avg_revenue_mvnd = 0 THEN NULL
         ELSE (g.avg_revenue_mvnd / p.avg_revenue_mvnd - 1) * 100 END AS revenue_growth_pct,
    CASE WHEN p.avg_income_mvnd_month IS NULL OR p.avg_income_mvnd_month = 0 THEN NULL
         ELSE (g.avg_income_mvnd_month / p.avg_income_mvnd_month - 1) * 100 END AS income_growth_pct,
    CASE WHEN g.entity_type = 'HTX' THEN g.ocop_all END AS ocop_count,
    CASE WHEN g.entity_type = 'HTX' THEN g.high_tech_all END AS high_tech_count
FROM grouped g
LEFT JOIN grouped p
    ON p.grain = g.grain
   AND p.entity_type = g.entity_type
   AND p.district_code IS NOT DISTINCT FROM g.district_code
   AND p.sector IS NOT DISTINCT FROM g.sector
   AND p.year = g.year - 1
