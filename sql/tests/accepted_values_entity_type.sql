-- severity: error
-- description: entity_type is HTX or THT in every mart
SELECT 'marts.province_indicators' AS table_name, year, entity_type FROM marts.province_indicators
WHERE entity_type NOT IN ('HTX', 'THT')
UNION ALL
SELECT 'marts.district_indicators', year, entity_type FROM marts.district_indicators
WHERE entity_type NOT IN ('HTX', 'THT')
UNION ALL
SELECT 'marts.sector_indicators', year, entity_type FROM marts.sector_indicators
WHERE entity_type NOT IN ('HTX', 'THT')
