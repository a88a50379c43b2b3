-- @description Danh mục đơn vị báo cáo qua các thời kỳ — reporting units over time: district-level units of the former provinces (report years up to 2024) and commune-level units of today (from 2025), with validity
-- @column unit_code: Mã đơn vị — GSO code: 3-digit district or 5-digit commune
-- @column level: Cấp — district | commune
-- @column unit_name: Tên đơn vị — unit name ('Lạc Sơn', 'Thành phố Hòa Bình', 'Xã Lạc Sơn')
-- @column unit_kind: Loại đơn vị — Huyện, Thành phố, Thị xã, Quận | Xã, Phường, Đặc khu
-- @column province_code: Mã tỉnh — the province the unit belonged to while valid (a district: its former province; a commune: today's province)
-- @column province_name: Tên tỉnh — name of that province
-- @column area_code: Mã tỉnh cũ — former province (area): a district's province; a commune's former province
-- @column area_name: Tên tỉnh cũ — name of the former province
-- @column valid_from: Hiệu lực từ — valid from (inclusive); NULL = before the data begins
-- @column valid_to: Hiệu lực đến — valid to (exclusive); NULL = still valid
SELECT
    u.unit_code,
    u.level,
    u.unit_name,
    u.unit_kind,
    u.province_code,
    p.province_name,
    u.area_code,
    a.province_name AS area_name,
    u.valid_from,
    u.valid_to
FROM ref.units u
LEFT JOIN ref.provinces p
    ON p.province_code = u.province_code
   AND p.era = CASE WHEN u.level = 'district' THEN 'former' ELSE 'current' END
LEFT JOIN ref.provinces a
    ON a.province_code = u.area_code
   AND a.era = 'former'
ORDER BY u.level DESC, u.unit_code
