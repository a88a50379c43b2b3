-- severity: error
-- description: every reporting unit in the register and support exists in core.dim_unit at the level its year requires (a district up to 2024, a commune from 2025); every district_code of the register and the district marts exists in core.dim_district
WITH used AS (
    SELECT DISTINCT 'core.fct_register' AS table_name, year, unit_code FROM core.fct_register
    UNION ALL SELECT DISTINCT 'core.fct_support', year, unit_code FROM core.fct_support WHERE unit_code IS NOT NULL
    UNION ALL SELECT DISTINCT 'marts.funding_backlog', year, unit_code FROM marts.funding_backlog
),
districts AS (
    SELECT DISTINCT 'core.fct_register' AS table_name, district_code FROM core.fct_register WHERE district_code IS NOT NULL
    UNION ALL SELECT DISTINCT 'marts.district_indicators', district_code FROM marts.district_indicators
)
SELECT u.table_name, u.year, u.unit_code, 'unit' AS problem
FROM used u
LEFT JOIN core.dim_unit d ON d.unit_code = u.unit_code
WHERE u.unit_code IS NULL OR d.unit_code IS NULL
   OR d.level <> CASE WHEN u.year >= 2025 THEN 'commune' ELSE 'district' END
UNION ALL
SELECT table_name, NULL, district_code, 'district'
FROM districts
WHERE district_code NOT IN (SELECT district_code FROM core.dim_district WHERE district_code IS NOT NULL)
