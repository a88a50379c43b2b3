-- severity: error
-- description: communes of today never count more than their former-province area (rows whose commune cell does not resolve count only in the area), per year × area × entity_type
WITH c AS (
    SELECT year, area_code, entity_type, sum(active_count) AS active_count, sum(new_formed) AS new_formed
    FROM marts.commune_indicators
    GROUP BY ALL
)
SELECT c.year, c.area_code, c.entity_type, c.active_count AS communes_active, a.active_count AS area_active,
       c.new_formed AS communes_new, a.new_formed AS area_new
FROM c
LEFT JOIN marts.area_indicators a ON a.year = c.year AND a.area_code = c.area_code AND a.entity_type = c.entity_type
WHERE a.year IS NULL OR c.active_count > a.active_count OR c.new_formed > a.new_formed
