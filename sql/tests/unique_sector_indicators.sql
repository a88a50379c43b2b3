-- severity: error
-- description: marts.sector_indicators has one line per year × sector × entity_type
SELECT year, sector, entity_type, count(*) AS n
FROM marts.sector_indicators
GROUP BY year, sector, entity_type
HAVING count(*) > 1
