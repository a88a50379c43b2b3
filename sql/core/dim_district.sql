-- @description Danh mục huyện, thành phố — district-level units of the province with their validity (including units since merged, e.g. Kỳ Sơn until 2020-01-01)
-- @column district_code: Mã huyện — GSO district code (3 digits)
-- @column district_name: Tên huyện, thành phố — district name
-- @column province_code: Mã tỉnh — GSO province code
-- @column valid_from: Hiệu lực từ — valid from (inclusive)
-- @column valid_to: Hiệu lực đến — valid to (exclusive); NULL = still valid
SELECT
    district_code,
    district_name,
    valid_from,
    valid_to,
    province_code
FROM ref.districts
