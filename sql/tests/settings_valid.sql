-- severity: error
-- description: ref.settings backlog_window_years, when set, is a whole number of years ≥ 1 (missing = default 3)
SELECT key, value
FROM ref.settings
WHERE key = 'backlog_window_years'
  AND (value IS NULL OR NOT regexp_full_match(trim(value), '[0-9]+') OR TRY_CAST(trim(value) AS INTEGER) < 1)
