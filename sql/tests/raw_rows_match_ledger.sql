-- severity: error
-- description: the rows of each loaded file in raw.* equal its rows_loaded in the ledger (audit.files): nothing loaded twice, nothing dropped between reading and loading (checked whenever the build has a ledger)
WITH loaded AS (
    SELECT source_file, count(*) AS n FROM (
        SELECT source_file FROM raw.htx UNION ALL SELECT source_file FROM raw.tht
        UNION ALL SELECT source_file FROM raw.ho_tro UNION ALL SELECT source_file FROM raw.chi_tieu)
    GROUP BY source_file
),
ledger AS (
    SELECT source_file, rows_loaded FROM audit.files
    WHERE status IN ('new', 'changed', 'unchanged') AND coalesce(rows_loaded, 0) > 0
)
SELECT coalesce(l.source_file, r.source_file) AS source_file, r.rows_loaded AS ledger_rows, l.n AS raw_rows
FROM loaded l
FULL OUTER JOIN ledger r ON r.source_file = l.source_file
WHERE l.n IS DISTINCT FROM r.rows_loaded
  AND EXISTS (SELECT 1 FROM audit.files)
-- files the ledger counts differently first, then files missing from it: the message's sample
-- (5 rows) is the same on every run
ORDER BY r.rows_loaded IS NULL, source_file
