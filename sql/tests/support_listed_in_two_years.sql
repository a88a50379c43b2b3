-- severity: warn
-- description: the same support allocation (registration code, type, date, amount) listed in the HO_TRO forms of two report years: counted in both (the units to ask which one holds it)
SELECT reg_code, support_type, allocated_on, amount_mvnd, list(DISTINCT year ORDER BY year) AS report_years,
       string_agg(DISTINCT source_file, '; ') AS source_files
FROM core.fct_support
GROUP BY reg_code, support_type, allocated_on, amount_mvnd
HAVING count(DISTINCT year) > 1
