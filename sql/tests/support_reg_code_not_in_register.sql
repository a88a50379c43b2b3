-- severity: warn
-- description: support rows whose reg_code appears in no HTX register of any year (loaded all the same; the register may catch up)
SELECT year, unit_code, reg_code, support_type, amount_mvnd, allocated_on, source_file, sheet, row_number
FROM core.fct_support
WHERE NOT in_register
ORDER BY year, unit_code, reg_code
