-- severity: warn
-- description: an HTX reg_code listed in the registers of more than one reporting unit (district or commune) in the same year (counted once per unit in every indicator)
SELECT year, reg_code, count(*) AS n, string_agg(unit_code || ': ' || source_file || ' row ' || row_number, '; ') AS rows
FROM core.fct_register
WHERE entity_type = 'HTX'
GROUP BY year, reg_code
HAVING count(DISTINCT unit_code) > 1
