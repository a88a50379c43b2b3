-- @description Thực hiện so với kế hoạch — plan vs actual per year × indicator: target from the year-Y CHI_TIEU form, actual from the indicators of the province whose plan it is (up to 2024 the former province, marts.province_indicators; from 2025 today's province, marts.current_province_indicators, growth over the restated year before; the whole warehouse when staging.plan.province_code is NULL) and its units' training support; status met when actual ≥ target_min, not_met when below, no_data when the actual is null
-- @column year: Năm kế hoạch — plan year Y
-- @column indicator_code: Mã chỉ tiêu — new_htx | new_tht | htx_revenue_growth_pct | htx_income_growth_pct | training_turns | high_tech_htx
-- @column target_min: Kế hoạch tối thiểu — lower bound of the target (a single number is both bounds)
-- @column target_max: Kế hoạch tối đa — upper bound of the target (NULL for 'từ N')
-- @column actual: Thực hiện — actual value in the indicator's unit (count, percent or persons)
-- @column status: Đánh giá — met | not_met | no_data
-- @column label: Chỉ tiêu — indicator label as written in the plan
-- @column unit: Đơn vị tính — unit as written in the plan
-- @column target_raw: Kế hoạch — target as written in the plan
-- @column province_code: Tỉnh của kế hoạch — the province whose plan it is, as it was that year (NULL: the whole warehouse)
WITH indicators AS (  -- up to 2024 the former province as it was; from 2025 today's province (growth over the restated year before)
    SELECT year, province_code, entity_type, new_formed, revenue_growth_pct, income_growth_pct, high_tech_count
    FROM marts.province_indicators
    WHERE year < 2025
    UNION ALL
    SELECT year, province_code, entity_type, new_formed, revenue_growth_pct, income_growth_pct, high_tech_count
    FROM marts.current_province_indicators
    WHERE year >= 2025
    UNION ALL
    SELECT year, NULL, entity_type, new_formed, revenue_growth_pct, income_growth_pct, high_tech_count
    FROM marts.total_indicators
),
training AS (  -- participants of training support by year of allocation, per province of the reporting unit
    SELECT s.allocated_year AS year, u.province_code, sum(s.participants)::BIGINT AS training_turns
    FROM core.fct_support s
    LEFT JOIN ref.units u ON u.unit_code = s.unit_code
    WHERE s.support_type = 'training'
    GROUP BY ALL
    UNION ALL
    SELECT year, NULL, training_turns FROM marts.training_turns
),
actuals AS (
    SELECT
        p.year,
        p.indicator_code,
        p.target_min,
        p.target_max,
        CASE p.indicator_code
            WHEN 'new_htx' THEN htx.new_formed::DOUBLE
            WHEN 'new_tht' THEN tht.new_formed::DOUBLE
            WHEN 'htx_revenue_growth_pct' THEN htx.revenue_growth_pct
            WHEN 'htx_income_growth_pct' THEN htx.income_growth_pct
            WHEN 'training_turns' THEN tr.training_turns::DOUBLE
            WHEN 'high_tech_htx' THEN htx.high_tech_count::DOUBLE
        END AS actual,
        p.label,
        p.unit,
        p.target_raw,
        p.province_code
    FROM staging.plan p
    LEFT JOIN indicators htx
        ON htx.year = p.year AND htx.entity_type = 'HTX' AND htx.province_code IS NOT DISTINCT FROM p.province_code
    LEFT JOIN indicators tht
        ON tht.year = p.year AND tht.entity_type = 'THT' AND tht.province_code IS NOT DISTINCT FROM p.province_code
    LEFT JOIN training tr
        ON tr.year = p.year AND tr.province_code IS NOT DISTINCT FROM p.province_code
)
SELECT
    year,
    indicator_code,
    target_min,
    target_max,
    actual,
    CASE
        WHEN actual IS NULL THEN 'no_data'
        WHEN target_min IS NOT NULL THEN CASE WHEN actual >= target_min THEN 'met' ELSE 'not_met' END
        WHEN target_max IS NOT NULL THEN CASE WHEN actual <= target_max THEN 'met' ELSE 'not_met' END
        ELSE 'no_data'
    END AS status,
    label,
    unit,
    target_raw,
    province_code
FROM actuals
ORDER BY year, indicator_code
