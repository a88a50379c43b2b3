-- severity: error
-- description: the unit marts have one line per grain: area_indicators year × area × entity_type, current_province_indicators year × province × entity_type, commune_indicators year × commune × entity_type, total_indicators year × entity_type; core.dim_unit one row per unit_code
SELECT 'marts.area_indicators' AS table_name, year, area_code AS key, entity_type, count(*) AS n
FROM marts.area_indicators GROUP BY ALL HAVING count(*) > 1
UNION ALL
SELECT 'marts.current_province_indicators', year, province_code, entity_type, count(*)
FROM marts.current_province_indicators GROUP BY ALL HAVING count(*) > 1
UNION ALL
SELECT 'marts.commune_indicators', year, commune_code, entity_type, count(*)
FROM marts.commune_indicators GROUP BY ALL HAVING count(*) > 1
UNION ALL
SELECT 'marts.total_indicators', year, NULL, entity_type, count(*)
FROM marts.total_indicators GROUP BY ALL HAVING count(*) > 1
UNION ALL
SELECT 'core.dim_unit', NULL, unit_code, NULL, count(*)
FROM core.dim_unit GROUP BY ALL HAVING count(*) > 1
