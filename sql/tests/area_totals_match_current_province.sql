-- severity: error
-- description: former-province areas add up to today's province (new_formed, active_count, members, workers) per year × entity_type, and provinces of today add up to the whole warehouse
WITH a AS (
    SELECT year, province_code, entity_type,
           sum(new_formed) AS new_formed, sum(active_count) AS active_count,
           sum(coalesce(members, 0)) AS members, sum(coalesce(workers, 0)) AS workers
    FROM marts.area_indicators
    GROUP BY ALL
),
c AS (
    SELECT year, entity_type,
           sum(new_formed) AS new_formed, sum(active_count) AS active_count,
           sum(coalesce(members, 0)) AS members, sum(coalesce(workers, 0)) AS workers
    FROM marts.current_province_indicators
    GROUP BY ALL
)
SELECT 'area vs current_province' AS check_name, coalesce(p.year, a.year) AS year,
       coalesce(p.province_code, a.province_code) AS province_code, coalesce(p.entity_type, a.entity_type) AS entity_type,
       p.active_count AS expected_active, a.active_count AS summed_active
FROM marts.current_province_indicators p
FULL OUTER JOIN a ON a.year = p.year AND a.province_code = p.province_code AND a.entity_type = p.entity_type
WHERE p.year IS NULL OR a.year IS NULL
   OR p.new_formed <> a.new_formed OR p.active_count <> a.active_count
   OR coalesce(p.members, 0) <> a.members OR coalesce(p.workers, 0) <> a.workers
UNION ALL
SELECT 'current_province vs total', coalesce(t.year, c.year), NULL, coalesce(t.entity_type, c.entity_type),
       t.active_count, c.active_count
FROM marts.total_indicators t
FULL OUTER JOIN c ON c.year = t.year AND c.entity_type = t.entity_type
WHERE t.year IS NULL OR c.year IS NULL
   OR t.new_formed <> c.new_formed OR t.active_count <> c.active_count
   OR coalesce(t.members, 0) <> c.members OR coalesce(t.workers, 0) <> c.workers
