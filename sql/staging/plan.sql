-- @description Chỉ tiêu kế hoạch năm (đã làm sạch) — the province's annual plan targets, one row per accepted CHI_TIEU row
-- @column year: Năm kế hoạch — plan year
-- @column indicator_code: Mã chỉ tiêu — plan indicator code: new_htx | new_tht | htx_revenue_growth_pct | htx_income_growth_pct | training_turns | high_tech_htx
-- @column label: Chỉ tiêu — indicator label as written in the plan
-- @column unit: Đơn vị tính — unit as written in the plan
-- @column target_raw: Kế hoạch — target as written (number or range)
-- @column target_min: Kế hoạch tối thiểu — lower bound of the target
-- @column target_max: Kế hoạch tối đa — upper bound of the target (NULL for 'từ N')
SELECT
    year::INTEGER AS year,
    code AS indicator_code,
    label,
    unit,
    target_raw,
    target_min,
    target_max,
    source_file,
    sheet,
    row_number
FROM raw.chi_tieu
