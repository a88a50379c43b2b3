-- severity: error
-- description: district new_formed, active_count, members and workers add up to their province's per year × province × entity_type (report years up to 2024)
WITH d AS (
    SELECT year, province_code, entity_type,
           sum(new_formed) AS new_formed, sum(active_count) AS active_count,
           sum(coalesce(members, 0)) AS members, sum(coalesce(workers, 0)) AS workers
    FROM marts.district_indicators
    GROUP BY year, province_code, entity_type
),
p AS (
    SELECT * FROM marts.province_indicators WHERE year < 2025
)
SELECT coalesce(p.year, d.year) AS year, coalesce(p.province_code, d.province_code) AS province_code,
       coalesce(p.entity_type, d.entity_type) AS entity_type,
       p.new_formed AS province_new_formed, d.new_formed AS districts_new_formed,
       p.active_count AS province_active_count, d.active_count AS districts_active_count,
       p.members AS province_members, d.members AS districts_members,
       p.workers AS province_workers, d.workers AS districts_workers
FROM p
FULL OUTER JOIN d ON d.year = p.year AND d.province_code = p.province_code AND d.entity_type = p.entity_type
WHERE p.year IS NULL OR d.year IS NULL
   OR p.new_formed <> d.new_formed
   OR p.active_count <> d.active_count
   OR coalesce(p.members, 0) <> d.members
   OR coalesce(p.workers, 0) <> d.workers
