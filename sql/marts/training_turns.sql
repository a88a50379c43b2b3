-- @description Bồi dưỡng, đào tạo cán bộ, thành viên HTX — training support per year of allocation (allocated_on), province level
-- @column year: Năm bố trí — year Y in which the training support was allocated (year of allocated_on)
-- @column training_turns: Số lượt người được bồi dưỡng — people trained: sum of participants over training support allocated in Y (NULL when none reported)
-- @column training_allocations: Số lượt hỗ trợ đào tạo — count of training support rows allocated in Y
-- @column training_amount_mvnd: Kinh phí đào tạo — training support amount allocated in Y, million VND
SELECT
    allocated_year AS year,
    sum(participants)::BIGINT AS training_turns,
    count(*) AS training_allocations,
    sum(amount_mvnd) AS training_amount_mvnd
FROM core.fct_support
WHERE support_type = 'training'
GROUP BY allocated_year
ORDER BY year
