-- severity: error
-- description: the grain keys of every mart and of core.dim_district are not null
SELECT 'marts.province_indicators' AS table_name, year, entity_type AS key_1, province_code AS key_2
FROM marts.province_indicators WHERE year IS NULL OR entity_type IS NULL OR province_code IS NULL
UNION ALL
SELECT 'marts.district_indicators', year, entity_type, district_code
FROM marts.district_indicators WHERE year IS NULL OR entity_type IS NULL OR district_code IS NULL OR district_name IS NULL
UNION ALL
SELECT 'marts.sector_indicators', year, entity_type, sector
FROM marts.sector_indicators WHERE year IS NULL OR entity_type IS NULL OR sector IS NULL
UNION ALL
SELECT 'marts.funding_backlog', year, unit_code, reg_code
FROM marts.funding_backlog WHERE year IS NULL OR unit_code IS NULL OR reg_code IS NULL OR established_on IS NULL
UNION ALL
SELECT 'marts.area_indicators', year, entity_type, area_code
FROM marts.area_indicators WHERE year IS NULL OR entity_type IS NULL OR area_code IS NULL
UNION ALL
SELECT 'marts.commune_indicators', year, entity_type, commune_code
FROM marts.commune_indicators WHERE year IS NULL OR entity_type IS NULL OR commune_code IS NULL OR commune_name IS NULL
UNION ALL
SELECT 'marts.plan_vs_actual', year, indicator_code, status
FROM marts.plan_vs_actual WHERE year IS NULL OR indicator_code IS NULL OR status IS NULL
UNION ALL
SELECT 'core.dim_district', NULL, district_code, district_name
FROM core.dim_district WHERE district_code IS NULL OR district_name IS NULL
