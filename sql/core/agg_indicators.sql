-- @description Chỉ tiêu tổng hợp theo cấp — indicators at every grain × year × entity_type in one table, the single definition the marts read, over the register rows that count (core.fct_register.is_counted: an HTX listed by two units in one year counts once). Grains: province (as it was that year), district, sector, area (former province), current_province (today's province, restated before 2025), commune (commune of today, restated before 2025), all (every unit the warehouse serves)
-- @column grain: Cấp tổng hợp — province | district | sector | area | current_province | commune | all
-- @column province_code: Mã tỉnh — province as it was that year (province grain only, else NULL)
-- @column district_code: Mã huyện — GSO district code (district grain only, else NULL)
-- @column sector: Lĩnh vực — sector code (sector grain only, else NULL)
-- @column area_code: Mã tỉnh cũ — former province (area grain only, else NULL)
-- @column current_province_code: Mã tỉnh hiện nay — today's province (current_province grain only, else NULL)
-- @column commune_code: Mã xã hiện nay — commune of today (commune grain only, else NULL)
-- @column approximate: Gần đúng — some row counted came through a split former commune (commune grain; else false)
WITH counted AS (
    SELECT year, entity_type, province_code, district_code, sector, area_code, current_province_code,
           commune_code, commune_match, is_new, is_active, members, workers, ocop_stars, high_tech,
           -- the terms of the averages, active rows only. A DOUBLE sum depends on the order in which
           -- threads add; these are summed exactly instead (sql/README.md "Deterministic sums"): each
           -- term as the exact DECIMAL of its shortest decimal spelling (4.56, not 4.5599999...).
           -- A term outside ±1e12 (absurd, NaN, infinite) is added as a DOUBLE (*_rest)
           CASE WHEN is_active THEN revenue END AS revenue_a,
           CASE WHEN is_active AND abs(revenue) < 1e12 THEN revenue::VARCHAR::DECIMAL(38, 18) END AS revenue_exact,
           CASE WHEN is_active AND NOT abs(revenue) < 1e12 THEN revenue END AS revenue_rest,
           CASE WHEN is_active THEN profit END AS profit_a,
           CASE WHEN is_active AND abs(profit) < 1e12 THEN profit::VARCHAR::DECIMAL(38, 18) END AS profit_exact,
           CASE WHEN is_active AND NOT abs(profit) < 1e12 THEN profit END AS profit_rest,
           CASE WHEN is_active AND income IS NOT NULL AND income_weight > 0 THEN income_weight END AS weight_i,
           CASE WHEN is_active AND income IS NOT NULL AND income_weight > 0 AND abs(income * income_weight) < 1e12
                THEN (income * income_weight)::VARCHAR::DECIMAL(38, 18) END AS income_w_exact,
           CASE WHEN is_active AND income IS NOT NULL AND income_weight > 0 AND NOT abs(income * income_weight) < 1e12
                THEN income * income_weight END AS income_w_rest
    FROM core.fct_register
    WHERE is_counted  -- an HTX listed by two units in one year counts once (core.fct_register.is_counted)
),
sums AS (
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
        count(revenue_a) AS revenue_n,
        sum(revenue_exact) AS revenue_exact,
        sum(revenue_rest) AS revenue_rest,
        count(profit_a) AS profit_n,
        sum(profit_exact) AS profit_exact,
        sum(profit_rest) AS profit_rest,
        sum(income_w_exact) AS income_w_exact,
        sum(income_w_rest) AS income_w_rest,
        sum(weight_i) AS weight_sum,
        count(*) FILTER (WHERE is_active AND ocop_stars IS NOT NULL) AS ocop_all,
        count(*) FILTER (WHERE is_active AND high_tech) AS high_tech_all,
        coalesce(bool_or(commune_match = 'split'), false) AS approximate
    FROM counted
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
totals AS (  -- an exact sum becomes the nearest DOUBLE (through its exact text); NULL when no term
    SELECT *,
           CASE WHEN revenue_exact IS NOT NULL OR revenue_rest IS NOT NULL
                THEN coalesce(revenue_exact::VARCHAR::DOUBLE, 0) + coalesce(revenue_rest, 0) END AS revenue_sum,
           CASE WHEN profit_exact IS NOT NULL OR profit_rest IS NOT NULL
                THEN coalesce(profit_exact::VARCHAR::DOUBLE, 0) + coalesce(profit_rest, 0) END AS profit_sum,
           CASE WHEN income_w_exact IS NOT NULL OR income_w_rest IS NOT NULL
                THEN coalesce(income_w_exact::VARCHAR::DOUBLE, 0) + coalesce(income_w_rest, 0) END AS income_w_sum
    FROM sums
),
grouped AS (
    SELECT grain, year, entity_type, province_code, district_code, sector, area_code,
           current_province_code, commune_code, new_formed, active_count, members, workers,
           revenue_sum / revenue_n AS avg_revenue_mvnd,
           profit_sum / profit_n AS avg_profit_mvnd,
           income_w_sum / nullif(weight_sum, 0) AS avg_income_mvnd_month,
           ocop_all, high_tech_all, approximate
    FROM totals
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
