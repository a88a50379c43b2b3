-- severity: error
-- description: marts.funding_backlog has one line per year × district × awaiting HTX (reg_code)
SELECT year, unit_code, reg_code, count(*) AS n
FROM marts.funding_backlog
GROUP BY year, unit_code, reg_code
HAVING count(*) > 1
