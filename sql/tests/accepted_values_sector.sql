-- severity: error
-- description: sector codes in the register and in marts.sector_indicators are codes of the sector vocabulary (ref.vocabularies, from vocabularies.toml)
WITH accepted AS (SELECT code FROM ref.vocabularies WHERE vocabulary = 'sector')
SELECT 'core.fct_register' AS table_name, year, entity_type, sector, source_file, sheet, row_number
FROM core.fct_register WHERE sector IS NULL OR sector NOT IN (SELECT code FROM accepted)
UNION ALL
SELECT 'marts.sector_indicators', year, entity_type, sector, NULL, NULL, NULL
FROM marts.sector_indicators WHERE sector IS NULL OR sector NOT IN (SELECT code FROM accepted)
