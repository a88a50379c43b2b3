-- severity: error
-- description: support rows have a support type of the support_type vocabulary (ref.vocabularies), an amount > 0 and an allocation date
SELECT year, unit_code, reg_code, support_type, amount_mvnd, allocated_on, source_file, sheet, row_number
FROM core.fct_support
WHERE support_type IS NULL
   OR support_type NOT IN (SELECT code FROM ref.vocabularies WHERE vocabulary = 'support_type')
   OR amount_mvnd IS NULL OR amount_mvnd <= 0
   OR allocated_on IS NULL
   OR participants < 0
