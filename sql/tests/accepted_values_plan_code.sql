-- severity: error
-- description: plan indicator codes are the six of the contract
SELECT year, indicator_code, source_file, sheet, row_number
FROM staging.plan
WHERE indicator_code IS NULL OR indicator_code NOT IN
    ('new_htx', 'new_tht', 'htx_revenue_growth_pct', 'htx_income_growth_pct', 'training_turns', 'high_tech_htx')
