-- severity: error
-- description: each form of a unit and year comes from one source file (a resubmission supersedes the older file; two files both counted would double the unit)
WITH rows AS (
    SELECT year, unit_code, 'HTX' AS form, source_file FROM raw.htx
    UNION ALL SELECT year, unit_code, 'THT', source_file FROM raw.tht
    UNION ALL SELECT year, unit_code, 'HO_TRO', source_file FROM raw.ho_tro
    UNION ALL SELECT year, unit_code, 'CHI_TIEU', source_file FROM raw.chi_tieu
),
files AS (  -- one row per file first: the aggregates below then see a few hundred rows, not every row
    SELECT DISTINCT year, unit_code, form, source_file FROM rows
)
SELECT year, unit_code, form, count(DISTINCT source_file) AS files, string_agg(DISTINCT source_file, '; ' ORDER BY source_file) AS source_files
FROM files
GROUP BY year, unit_code, form
HAVING count(DISTINCT source_file) > 1
