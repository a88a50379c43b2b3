-- @description Bồi dưỡng, đào tạo cán bộ, thành viên HTX — training support per year of allocation (allocated_on), province level
-- @column year: Năm bố trí — year Y in which the training support was allocated (year of allocated_on)
-- @column training_turns: Số lượt người được bồi dưỡng — people trained: sum of participants over training support allocated in Y (NULL when none reported)
-- @column training_allocations: Số lượt hỗ trợ đào tạo — count of training support rows allocated in Y
-- @column training_amount_mvnd: Kinh phí đào tạo — training support amount allocated in Y, million VND
SELECT
    allocated_year AS year,
    sum(participants)::BIGINT AS training_turns,
    count(*) AS training_allocations,
    -- summed exactly (the DECIMAL of each amount's shortest spelling), the same last bits on
    -- every build; an amount outside ±1e12 (absurd) keeps the DOUBLE sum (sql/README.md "Deterministic sums")
    CASE WHEN count(amount_mvnd) = count(CASE WHEN abs(amount_mvnd) < 1e12 THEN 1 END)
         THEN sum(CASE WHEN abs(amount_mvnd) < 1e12 THEN amount_mvnd::VARCHAR::DECIMAL(38, 18) END)::VARCHAR::DOUBLE
         ELSE sum(amount_mvnd) END AS training_amount_mvnd
FROM core.fct_support
WHERE support_type = 'training'
GROUP BY allocated_year
ORDER BY year
