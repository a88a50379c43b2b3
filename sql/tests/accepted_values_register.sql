-- severity: error
-- description: register rows have a status of the status vocabulary and (HTX) a kind of the kind vocabulary (ref.vocabularies), a report year, members ≥ 0 and an establishment date not after 31 December of the report year
SELECT year, entity_type, unit_code, reg_code, name, status, kind, members, established_on,
       source_file, sheet, row_number
FROM core.fct_register
WHERE year IS NULL
   OR status IS NULL OR status NOT IN (SELECT code FROM ref.vocabularies WHERE vocabulary = 'status')
   OR (entity_type = 'HTX' AND (kind IS NULL OR kind NOT IN (SELECT code FROM ref.vocabularies WHERE vocabulary = 'kind')))
   OR (entity_type = 'HTX' AND reg_code IS NULL)
   OR members IS NULL OR members < 0 OR workers < 0
   OR established_on IS NULL OR established_on > make_date(year, 12, 31)
