-- severity: error
-- description: no number in any mart is NaN or infinite (a figure such as avg_revenue_mvnd = inf would be published); one row per offending cell: mart, column, value. Every marts.* table is listed here (tests/test_values_trust.py checks it against sql/marts/)
SELECT 'area_indicators' AS mart, column_name, value FROM (
    UNPIVOT (SELECT CASE WHEN typeof(COLUMNS(*)) IN ('DOUBLE', 'FLOAT') AND NOT isfinite(TRY_CAST(COLUMNS(*) AS DOUBLE))
                         THEN COLUMNS(*)::VARCHAR END FROM marts.area_indicators)
    ON COLUMNS(*) INTO NAME column_name VALUE value)
UNION ALL
SELECT 'commune_indicators' AS mart, column_name, value FROM (
    UNPIVOT (SELECT CASE WHEN typeof(COLUMNS(*)) IN ('DOUBLE', 'FLOAT') AND NOT isfinite(TRY_CAST(COLUMNS(*) AS DOUBLE))
                         THEN COLUMNS(*)::VARCHAR END FROM marts.commune_indicators)
    ON COLUMNS(*) INTO NAME column_name VALUE value)
UNION ALL
SELECT 'current_province_indicators' AS mart, column_name, value FROM (
    UNPIVOT (SELECT CASE WHEN typeof(COLUMNS(*)) IN ('DOUBLE', 'FLOAT') AND NOT isfinite(TRY_CAST(COLUMNS(*) AS DOUBLE))
                         THEN COLUMNS(*)::VARCHAR END FROM marts.current_province_indicators)
    ON COLUMNS(*) INTO NAME column_name VALUE value)
UNION ALL
SELECT 'district_indicators' AS mart, column_name, value FROM (
    UNPIVOT (SELECT CASE WHEN typeof(COLUMNS(*)) IN ('DOUBLE', 'FLOAT') AND NOT isfinite(TRY_CAST(COLUMNS(*) AS DOUBLE))
                         THEN COLUMNS(*)::VARCHAR END FROM marts.district_indicators)
    ON COLUMNS(*) INTO NAME column_name VALUE value)
UNION ALL
SELECT 'funding_backlog' AS mart, column_name, value FROM (
    UNPIVOT (SELECT CASE WHEN typeof(COLUMNS(*)) IN ('DOUBLE', 'FLOAT') AND NOT isfinite(TRY_CAST(COLUMNS(*) AS DOUBLE))
                         THEN COLUMNS(*)::VARCHAR END FROM marts.funding_backlog)
    ON COLUMNS(*) INTO NAME column_name VALUE value)
UNION ALL
SELECT 'plan_vs_actual' AS mart, column_name, value FROM (
    UNPIVOT (SELECT CASE WHEN typeof(COLUMNS(*)) IN ('DOUBLE', 'FLOAT') AND NOT isfinite(TRY_CAST(COLUMNS(*) AS DOUBLE))
                         THEN COLUMNS(*)::VARCHAR END FROM marts.plan_vs_actual)
    ON COLUMNS(*) INTO NAME column_name VALUE value)
UNION ALL
SELECT 'province_indicators' AS mart, column_name, value FROM (
    UNPIVOT (SELECT CASE WHEN typeof(COLUMNS(*)) IN ('DOUBLE', 'FLOAT') AND NOT isfinite(TRY_CAST(COLUMNS(*) AS DOUBLE))
                         THEN COLUMNS(*)::VARCHAR END FROM marts.province_indicators)
    ON COLUMNS(*) INTO NAME column_name VALUE value)
UNION ALL
SELECT 'sector_indicators' AS mart, column_name, value FROM (
    UNPIVOT (SELECT CASE WHEN typeof(COLUMNS(*)) IN ('DOUBLE', 'FLOAT') AND NOT isfinite(TRY_CAST(COLUMNS(*) AS DOUBLE))
                         THEN COLUMNS(*)::VARCHAR END FROM marts.sector_indicators)
    ON COLUMNS(*) INTO NAME column_name VALUE value)
UNION ALL
SELECT 'total_indicators' AS mart, column_name, value FROM (
    UNPIVOT (SELECT CASE WHEN typeof(COLUMNS(*)) IN ('DOUBLE', 'FLOAT') AND NOT isfinite(TRY_CAST(COLUMNS(*) AS DOUBLE))
                         THEN COLUMNS(*)::VARCHAR END FROM marts.total_indicators)
    ON COLUMNS(*) INTO NAME column_name VALUE value)
UNION ALL
SELECT 'training_turns' AS mart, column_name, value FROM (
    UNPIVOT (SELECT CASE WHEN typeof(COLUMNS(*)) IN ('DOUBLE', 'FLOAT') AND NOT isfinite(TRY_CAST(COLUMNS(*) AS DOUBLE))
                         THEN COLUMNS(*)::VARCHAR END FROM marts.training_turns)
    ON COLUMNS(*) INTO NAME column_name VALUE value)
