-- severity: error
-- description: marts.province_indicators has one line per year × province × entity_type
SELECT year, province_code, entity_type, count(*) AS n
FROM marts.province_indicators
GROUP BY year, province_code, entity_type
HAVING count(*) > 1
