-- severity: warn
-- description: a unit expected in a report year (districts valid on 31 December up to 2024, communes of today from 2025) that has no HTX or THT register row that year (missing or rejected report: the unit to call)
WITH years AS (
    SELECT DISTINCT year FROM core.fct_register
)
SELECT y.year, d.unit_code, d.level, d.unit_name, d.area_code
FROM years y
JOIN core.dim_unit d
  ON d.level = CASE WHEN y.year >= 2025 THEN 'commune' ELSE 'district' END
 AND (d.valid_from IS NULL OR d.valid_from <= make_date(y.year, 12, 31))
 AND (d.valid_to IS NULL OR d.valid_to > make_date(y.year, 12, 31))
WHERE NOT EXISTS (SELECT 1 FROM core.fct_register r
                  WHERE r.year = y.year AND r.unit_code = d.unit_code)
ORDER BY y.year, d.unit_code
