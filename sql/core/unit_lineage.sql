-- @description Xã cũ → xã mới — former communes (before 1 July 2025) of the areas served mapped to the communes of today; a split former commune has one row per new commune, the dataset's default flagged
-- @column old_commune_code: Mã xã cũ — former commune (GSO, 5 digits)
-- @column old_commune_name: Tên xã cũ — its name
-- @column old_district_code: Mã huyện cũ — its district
-- @column old_province_code: Mã tỉnh cũ — its province
-- @column new_commune_code: Mã xã mới — commune of today
-- @column new_province_code: Mã tỉnh mới — province of today
-- @column split: Bị chia tách — the former commune was split between several communes of today
-- @column is_default: Mặc định — the commune of today used to restate history for a split former commune (always true when not split)
SELECT
    l.old_commune_code,
    f.commune_name AS old_commune_name,
    l.old_district_code,
    l.old_province_code,
    l.new_commune_code,
    l.new_province_code,
    l.split,
    l.is_default
FROM ref.commune_lineage l
LEFT JOIN ref.former_communes f ON f.commune_code = l.old_commune_code
ORDER BY l.old_commune_code, l.new_commune_code
