-- severity: error
-- description: every district_code in the register, support and marts exists in core.dim_district
WITH used AS (
    SELECT DISTINCT 'core.fct_register' AS table_name, district_code FROM core.fct_register
    UNION ALL SELECT DISTINCT 'core.fct_support', district_code FROM core.fct_support WHERE district_code IS NOT NULL
    UNION ALL SELECT DISTINCT 'marts.district_indicators', district_code FROM marts.district_indicators
    UNION ALL SELECT DISTINCT 'marts.funding_backlog', district_code FROM marts.funding_backlog
)
SELECT u.table_name, u.district_code
FROM used u
WHERE u.district_code IS NULL
   OR u.district_code NOT IN (SELECT district_code FROM core.dim_district WHERE district_code IS NOT NULL)
