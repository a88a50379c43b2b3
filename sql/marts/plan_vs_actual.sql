-- @description Thực hiện so với kế hoạch — plan vs actual per year × indicator: target from the year-Y CHI_TIEU form, actual from the province indicators / training; status met when actual ≥ target_min, not_met when below, no_data when the actual is null
-- @column year: Năm kế hoạch — plan year Y
-- @column indicator_code: Mã chỉ tiêu — new_htx | new_tht | htx_revenue_growth_pct | htx_income_growth_pct | training_turns | high_tech_htx
-- @column target_min: Kế hoạch tối thiểu — lower bound of the target (a single number is both bounds)
-- @column target_max: Kế hoạch tối đa — upper bound of the target (NULL for 'từ N')
-- @column actual: Thực hiện — actual value in the indicator's unit (count, percent or persons)
-- @column status: Đánh giá — met | not_met | no_data
-- @column label: Chỉ tiêu — indicator label as written in the plan
-- @column unit: Đơn vị tính — unit as written in the plan
-- @column target_raw: Kế hoạch — target as written in the plan
WITH htx AS (
    SELECT * FROM marts.total_indicators WHERE entity_type = 'HTX'
),
tht AS (
    SELECT * FROM marts.total_indicators WHERE entity_type = 'THT'
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
        p.target_raw
    FROM staging.plan p
    LEFT JOIN htx ON htx.year = p.year
    LEFT JOIN tht ON tht.year = p.year
    LEFT JOIN marts.training_turns tr ON tr.year = p.year
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
    target_raw
FROM actuals
ORDER BY year, indicator_code
