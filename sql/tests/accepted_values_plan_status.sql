-- severity: error
-- description: plan_vs_actual.status is met, not_met or no_data, and agrees with actual vs target_min
SELECT year, indicator_code, target_min, target_max, actual, status
FROM marts.plan_vs_actual
WHERE status NOT IN ('met', 'not_met', 'no_data')
   OR (actual IS NULL AND status <> 'no_data')
   OR (actual IS NOT NULL AND target_min IS NOT NULL
       AND status <> CASE WHEN actual >= target_min THEN 'met' ELSE 'not_met' END)
