-- severity: warn
-- description: an HTX reg_code listed in the registers of more than one district in the same year (counted once per district in every indicator)
SELECT year, reg_code, count(*) AS n, string_agg(district_code || ': ' || source_file || ' row ' || row_number, '; ') AS rows
FROM core.fct_register
WHERE entity_type = 'HTX'
GROUP BY year, reg_code
HAVING count(DISTINCT district_code) > 1
