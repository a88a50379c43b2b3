-- severity: error
-- description: sector codes in the register and in marts.sector_indicators are the contract's canonical codes
WITH accepted(sector) AS (
    VALUES ('agriculture'), ('handicraft'), ('transport'), ('tourism'), ('trade_services'),
           ('construction'), ('electricity'), ('market'), ('credit_fund'), ('environment'), ('other')
)
SELECT 'core.fct_register' AS table_name, year, entity_type, sector, source_file, sheet, row_number
FROM core.fct_register WHERE sector IS NULL OR sector NOT IN (SELECT sector FROM accepted)
UNION ALL
SELECT 'marts.sector_indicators', year, entity_type, sector, NULL, NULL, NULL
FROM marts.sector_indicators WHERE sector IS NULL OR sector NOT IN (SELECT sector FROM accepted)
