-- severity: error
-- description: marts.district_indicators has one line per year × district × entity_type
SELECT year, district_code, entity_type, count(*) AS n
FROM marts.district_indicators
GROUP BY year, district_code, entity_type
HAVING count(*) > 1
