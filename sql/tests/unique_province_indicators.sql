-- severity: error
-- description: marts.province_indicators has one line per year × entity_type
SELECT year, entity_type, count(*) AS n
FROM marts.province_indicators
GROUP BY year, entity_type
HAVING count(*) > 1
