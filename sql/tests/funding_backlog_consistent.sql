-- severity: error
-- description: every backlog line is an active HTX of that year's register with waiting_days ≥ 0
SELECT b.year, b.unit_code, b.reg_code, b.name, b.established_on, b.waiting_days
FROM marts.funding_backlog b
WHERE b.waiting_days < 0
   OR NOT EXISTS (SELECT 1 FROM core.fct_register r
                  WHERE r.entity_type = 'HTX' AND r.year = b.year AND r.reg_code = b.reg_code AND r.is_active)
