-- @description Chỉ tiêu tổng hợp theo cấp — indicators at every grain × year × entity_type in one table, the single definition the marts read, over the register rows that count (core.fct_register.is_counted: an HTX listed by two units in one year counts once). Grains: province (as it was that year), district, sector, area (former province), current_province (today's province, restated before 2025), commune (commune of today, restated before 2025), all (every unit the warehouse serves)
-- @column grain: Cấp tổng hợp — province | district | sector | area | current_province | commune | all
-- @column province_code: Mã tỉnh — province as it was that year (province grain only, else NULL)
-- @column district_code: Mã huyện — GSO district code (district grain only, else NULL)
-- @column sector: Lĩnh vực — sector code (sector grain only, else NULL)
-- @column area_code: Mã tỉnh cũ — former province (area grain only, else NULL)
-- @column current_province_code: Mã tỉnh hiện nay — today's province (current_province grain only, else NULL)
-- @column commune_code: Mã xã hiện nay — commune of today (commune grain only, else NULL)
-- @column approximate: Gần đúng — some row counted came through a split former commune (commune grain; else false)
WITH grouped AS (
    SELECT
        CASE WHEN GROUPING(province_code) = 0 THEN 'province'
             WHEN GROUPING(district_code) = 0 THEN 'district'
             WHEN GROUPING(sector) = 0 THEN 'sector'
             WHEN GROUPING(area_code) = 0 THEN 'area'
             WHEN GROUPING(current_province_code) = 0 THEN 'current_province'
             WHEN GROUPING(commune_code) = 0 THEN 'commune'
             ELSE 'all' END AS grain,
        year,
        entity_type,
        province_code,
        district_code,
        sector,
        area_code,
        current_province_code,
        commune_code,
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
        count(*) FILTER (WHERE is_active AND high_tech) AS high_tech_all,
        coalesce(bool_or(commune_match = 'split'), false) AS approximate
    FROM core.fct_register
    WHERE is_counted  -- an HTX listed by two units in one year counts once (core.fct_register.is_counted)
    GROUP BY GROUPING SETS (
        (year, entity_type, province_code),
        (year, entity_type, district_code),
        (year, entity_type, sector),
        (year, entity_type, area_code),
        (year, entity_type, current_province_code),
        (year, entity_type, commune_code),
        (year, entity_type)
    )
),
changed AS (  -- provinces of today formed from several former ones: no growth across 2024 -> 2025
    SELECT current_province_code AS province_code
    FROM ref.provinces
    WHERE era = 'former'
    GROUP BY current_province_code
    HAVING count(*) > 1
)
SELECT
    g.grain,
    g.year,
    g.entity_type,
    g.province_code,
    g.district_code,
    g.sector,
    g.area_code,
    g.current_province_code,
    g.commune_code,
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
    CASE WHEN g.entity_type = 'HTX' THEN g.high_tech_all END AS high_tech_count,
    g.approximate
FROM grouped g
LEFT JOIN grouped p
    ON p.grain = g.grain
   AND p.entity_type = g.entity_type
   AND p.province_code IS NOT DISTINCT FROM g.province_code
   AND p.district_code IS NOT DISTINCT FROM g.district_code
   AND p.sector IS NOT DISTINCT FROM g.sector
   AND p.area_code IS NOT DISTINCT FROM g.area_code
   AND p.current_province_code IS NOT DISTINCT FROM g.current_province_code
   AND p.commune_code IS NOT DISTINCT FROM g.commune_code
   AND p.year = g.year - 1
   AND NOT (g.grain = 'province' AND g.year = 2025 AND g.province_code IN (SELECT province_code FROM changed))
