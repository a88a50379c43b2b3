-- severity: error
-- description: marts.plan_vs_actual has one line per year × indicator_code (a plan code given twice in one year's CHI_TIEU form is ambiguous)
SELECT p.year, p.indicator_code, count(*) AS n,
       string_agg(DISTINCT s.source_file || ' sheet ' || s.sheet || ' row ' || s.row_number, '; ') AS plan_rows
FROM marts.plan_vs_actual p
LEFT JOIN staging.plan s ON s.year = p.year AND s.indicator_code = p.indicator_code
GROUP BY p.year, p.indicator_code
HAVING count(DISTINCT s.source_file || s.sheet || s.row_number) > 1
