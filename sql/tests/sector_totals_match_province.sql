-- severity: error
-- description: sector new_formed, active_count, members and workers add up to the whole warehouse's (marts.total_indicators) per year × entity_type
WITH d AS (
    SELECT year, entity_type,
           sum(new_formed) AS new_formed, sum(active_count) AS active_count,
           sum(coalesce(members, 0)) AS members, sum(coalesce(workers, 0)) AS workers
    FROM marts.sector_indicators
    GROUP BY year, entity_type
)
SELECT coalesce(p.year, d.year) AS year, coalesce(p.entity_type, d.entity_type) AS entity_type,
       p.new_formed AS province_new_formed, d.new_formed AS sectors_new_formed,
       p.active_count AS province_active_count, d.active_count AS sectors_active_count,
       p.members AS province_members, d.members AS sectors_members,
       p.workers AS province_workers, d.workers AS sectors_workers
FROM marts.total_indicators p
FULL OUTER JOIN d ON d.year = p.year AND d.entity_type = p.entity_type
WHERE p.year IS NULL OR d.year IS NULL
   OR p.new_formed <> d.new_formed
   OR p.active_count <> d.active_count
   OR coalesce(p.members, 0) <> d.members
   OR coalesce(p.workers, 0) <> d.workers
