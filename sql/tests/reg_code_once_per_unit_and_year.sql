-- severity: error
-- description: a registration code appears at most once in a unit's HTX register of a year (the reader quarantines duplicates; a second copy would be counted twice)
SELECT year, unit_code, reg_code, count(*) AS n, string_agg(source_file || ' row ' || row_number, '; ') AS rows
FROM staging.htx
GROUP BY year, unit_code, reg_code
HAVING count(*) > 1
