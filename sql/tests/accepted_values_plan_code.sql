-- severity: error
-- description: plan indicator codes are codes of the plan_code vocabulary (ref.vocabularies, from vocabularies.toml)
SELECT year, indicator_code, source_file, sheet, row_number
FROM staging.plan
WHERE indicator_code IS NULL
   OR indicator_code NOT IN (SELECT code FROM ref.vocabularies WHERE vocabulary = 'plan_code')
