-- severity: warn
-- description: a district valid in a report year that has no HTX or THT register row that year (missing or rejected report: the district to call)
WITH years AS (
    SELECT DISTINCT year FROM core.fct_register
)
SELECT y.year, d.district_code, d.district_name
FROM years y
JOIN core.dim_district d
  ON d.valid_from <= make_date(y.year, 12, 31)
 AND (d.valid_to IS NULL OR d.valid_to > make_date(y.year, 12, 31))
WHERE NOT EXISTS (SELECT 1 FROM core.fct_register r
                  WHERE r.year = y.year AND r.district_code = d.district_code)
ORDER BY y.year, d.district_code
