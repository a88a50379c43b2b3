-- severity: error
-- description: core.dim_district has one line per district_code
SELECT district_code, count(*) AS n
FROM core.dim_district
GROUP BY district_code
HAVING count(*) > 1
