-- severity: warn
-- description: an HTX registration code listed in the registers of more than one reporting unit (district or commune) in the same year: it counts once in every indicator and in the funding backlog, in the unit with the lowest code (counted_in; core.fct_register.is_counted), the other units' rows are loaded but not counted; one line per code and year naming every unit and its row — ask the units which one the cooperative belongs to
WITH several AS (  -- the few (year, code) listed by two units first: the texts below only for them
    SELECT year, reg_code
    FROM core.fct_register
    WHERE entity_type = 'HTX' AND reg_code IS NOT NULL
    GROUP BY year, reg_code
    HAVING min(unit_code) <> max(unit_code)
),
listed AS (
    SELECT r.year, r.reg_code, r.unit_code, r.is_counted,
           r.unit_code || ' ' || coalesce(u.unit_name, '?') AS unit,
           r.unit_code || ': ' || r.source_file || ' sheet ' || r.sheet || ' row ' || r.row_number AS listed_at
    FROM core.fct_register r
    SEMI JOIN several s ON s.year = r.year AND s.reg_code = r.reg_code
    LEFT JOIN core.dim_unit u ON u.unit_code = r.unit_code
    WHERE r.entity_type = 'HTX'
)
SELECT
    year,
    reg_code,
    count(DISTINCT unit_code) AS n_units,
    array_to_string(list_sort(list_distinct(list(unit))), '; ') AS units,
    min(unit) FILTER (WHERE is_counted) AS counted_in,
    array_to_string(list_sort(list(listed_at)), '; ') AS rows
FROM listed
GROUP BY year, reg_code
HAVING count(DISTINCT unit_code) > 1
ORDER BY year, reg_code
