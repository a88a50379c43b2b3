-- @description Chỉ tiêu kế hoạch năm (đã làm sạch) — the province's annual plan targets, one row per accepted CHI_TIEU row
-- @column year: Năm kế hoạch — plan year
-- @column indicator_code: Mã chỉ tiêu — plan indicator code: new_htx | new_tht | htx_revenue_growth_pct | htx_income_growth_pct | training_turns | high_tech_htx
-- @column label: Chỉ tiêu — indicator label as written in the plan
-- @column unit: Đơn vị tính — unit as written in the plan
-- @column target_raw: Kế hoạch — target as written (number or range)
-- @column target_min: Kế hoạch tối thiểu — lower bound of the target
-- @column target_max: Kế hoạch tối đa — upper bound of the target (NULL for 'từ N')
-- @column province_code: Tỉnh của kế hoạch — the province whose plan it is, as it was that year: today's province from 2025; before, the former province set by `former_plan_province` in coop.toml (ref.settings plan_province_former), or the only predecessor; NULL = compared with the whole warehouse
WITH s AS (
    SELECT max(value) FILTER (WHERE key = 'plan_province_current') AS current_code,
           max(value) FILTER (WHERE key = 'plan_province_former') AS former_code
    FROM ref.settings
)
SELECT
    year::INTEGER AS year,
    code AS indicator_code,
    label,
    unit,
    target_raw,
    target_min,
    target_max,
    CASE WHEN year >= 2025 THEN s.current_code ELSE s.former_code END AS province_code,
    source_file,
    sheet,
    row_number
FROM raw.chi_tieu
CROSS JOIN s
