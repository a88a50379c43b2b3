-- severity: error
-- description: communes of today never count more than their former-province area (rows whose commune cell does not resolve count only in the area), per year × area × entity_type — beyond the district-era rows restated into them from another area (the dataset's default commune of a split former commune can lie in another former province: docs/reform.md)
WITH c AS (
    SELECT year, area_code, entity_type, sum(active_count) AS active_count, sum(new_formed) AS new_formed
    FROM marts.commune_indicators
    GROUP BY ALL
),
x AS (  -- counted rows of a district of one area restated into a commune of today lying in another
    SELECT r.year, u.area_code, r.entity_type,
           count(*) FILTER (WHERE r.is_active) AS active_count, count(*) FILTER (WHERE r.is_new) AS new_formed
    FROM core.fct_register r
    JOIN core.dim_unit u ON u.unit_code = r.commune_code
    WHERE r.is_counted AND r.unit_level = 'district' AND u.area_code IS DISTINCT FROM r.area_code
    GROUP BY ALL
)
SELECT c.year, c.area_code, c.entity_type, c.active_count AS communes_active, a.active_count AS area_active,
       c.new_formed AS communes_new, a.new_formed AS area_new,
       coalesce(x.active_count, 0) AS from_other_areas_active, coalesce(x.new_formed, 0) AS from_other_areas_new
FROM c
LEFT JOIN marts.area_indicators a ON a.year = c.year AND a.area_code = c.area_code AND a.entity_type = c.entity_type
LEFT JOIN x ON x.year = c.year AND x.area_code = c.area_code AND x.entity_type = c.entity_type
WHERE (a.year IS NULL AND x.year IS NULL)
   OR c.active_count > coalesce(a.active_count, 0) + coalesce(x.active_count, 0)
   OR c.new_formed > coalesce(a.new_formed, 0) + coalesce(x.new_formed, 0)
