-- severity: error
-- description: a district has indicator lines only for years in which it existed (31 December of the year within valid_from..valid_to)
SELECT i.year, i.district_code, i.district_name, i.entity_type, d.valid_from, d.valid_to
FROM marts.district_indicators i
JOIN core.dim_district d ON d.district_code = i.district_code
WHERE make_date(i.year, 12, 31) < d.valid_from
   OR (d.valid_to IS NOT NULL AND make_date(i.year, 12, 31) >= d.valid_to)
