-- @description Sổ đăng ký HTX và THT hợp nhất — HTX (cooperatives and unions) and THT (cooperative groups) register rows unioned, one row per register row per year, with the flags the indicators use
-- @column unit_code: Mã đơn vị báo cáo — GSO code of the unit whose register lists the row: district (up to 2024) or commune (from 2025)
-- @column unit_level: Cấp đơn vị báo cáo — district | commune
-- @column district_code: Mã huyện — the reporting district (NULL for commune-era rows)
-- @column province_code: Mã tỉnh (thời điểm báo cáo) — the province as it was that year: a district's former province, a commune's province of today
-- @column area_code: Mã tỉnh cũ — former-province area of the reporting unit (the continuous series across 2025)
-- @column current_province_code: Mã tỉnh hiện nay — the province of today the row belongs to
-- @column old_commune_code: Mã xã cũ — former commune the commune cell names (district era, when it resolves uniquely within the reporting district)
-- @column commune_code: Mã xã hiện nay — commune of today: the reporting commune from 2025; before, the former commune mapped through core.unit_lineage (the default commune when split); NULL when the commune cell is missing or does not resolve
-- @column commune_match: Cách xác định xã — reporting_unit (from 2025) | matched | split (mapped to the default of a split former commune: approximate) | ambiguous | unknown (cell not a former commune of the district) | missing (cell blank)
-- @column reg_code: Mã số HTX — registration code (NULL for THT)
-- @column name: Tên — name of the cooperative or group
-- @column commune: Xã — commune
-- @column kind: Loại hình HTX — htx | union for HTX; NULL for THT
-- @column established_on: Ngày thành lập — date established
-- @column status: Tình trạng — status: active | suspended | dissolved
-- @column is_active: Đang hoạt động — status is active in the year-Y register
-- @column is_new: Thành lập mới — established in the report year (any status)
-- @column is_counted: Được tính — counted in every indicator and the funding backlog: false only for an HTX whose reg_code another reporting unit's register also lists that year, in every unit but the one with the lowest unit code (the cooperative counts once; data test reg_code_in_several_districts names the code, the year and the units)
-- @column members: Số thành viên — members, persons
-- @column workers: Số lao động — workers, persons (NULL = not reported)
-- @column revenue: Doanh thu — revenue, million VND a year
-- @column profit: Lợi nhuận — profit, million VND a year
-- @column income: Thu nhập bình quân — average income, million VND per person a month
-- @column income_weight: Trọng số thu nhập — weight of the income in the weighted mean: workers when reported, else members (persons)
-- @column ocop_stars: Sản phẩm OCOP — OCOP stars (NULL for THT or no OCOP product)
-- @column high_tech: Ứng dụng công nghệ cao — applies high technology (NULL for THT)
WITH unioned AS (
    SELECT year, 'HTX' AS entity_type, unit_code, reg_code, name, commune, kind,
           established_on, sector, status, members, workers, revenue, profit, income,
           ocop_stars, high_tech, source_file, sheet, row_number
    FROM staging.htx
    UNION ALL
    SELECT year, 'THT' AS entity_type, unit_code, NULL AS reg_code, name, commune, NULL AS kind,
           established_on, sector, status, members, workers, revenue, profit, income,
           NULL AS ocop_stars, NULL AS high_tech, source_file, sheet, row_number
    FROM staging.tht
),
located AS (
    SELECT r.*,
           u.level AS unit_level,
           u.area_code,
           u.province_code,
           coalesce(pv.current_province_code, u.province_code) AS current_province_code,
           coalesce(u.lineage_district_code, r.unit_code) AS lineage_district_code
    FROM unioned r
    LEFT JOIN ref.units u ON u.unit_code = r.unit_code
    LEFT JOIN ref.provinces pv ON pv.province_code = u.area_code AND pv.era = 'former'
),
-- The commune of a district-era row depends only on (lineage district, commune cell): it is
-- resolved once per distinct pair (a few thousand), not once per register row (sql/README.md).
former AS (
    SELECT commune_code, district_code,
           ref.unit_key(commune_name) AS full_key, ref.unit_key(commune_short) AS short_key
    FROM ref.former_communes
),
cell_values AS (  -- distinct district-era commune cells
    SELECT DISTINCT lineage_district_code, commune
    FROM located
    WHERE unit_level = 'district' AND nullif(trim(commune), '') IS NOT NULL
),
keyed AS (  -- keyed like folder names ('Xã Chí Đạo' = 'xachidao'); the key computed once per cell
    SELECT lineage_district_code, commune, ref.unit_key(commune) AS cell_key
    FROM cell_values
),
cells AS (
    SELECT lineage_district_code, commune, cell_key,
           regexp_replace(cell_key, '^(xa|phuong|thitran|tt)', '') AS bare_key
    FROM keyed
),
candidates AS (  -- rank 1: the full or short name as written; rank 2: a kind prefix dropped
    SELECT c.lineage_district_code, c.commune, f.commune_code, 1 AS rank
    FROM cells c JOIN former f
      ON f.district_code = c.lineage_district_code AND c.cell_key IN (f.full_key, f.short_key)
    UNION ALL
    SELECT c.lineage_district_code, c.commune, f.commune_code, 2 AS rank
    FROM cells c JOIN former f
      ON f.district_code = c.lineage_district_code AND f.short_key = c.bare_key AND c.bare_key <> c.cell_key
),
ranked AS (
    SELECT * FROM candidates
    QUALIFY rank = min(rank) OVER (PARTITION BY lineage_district_code, commune)
),
best AS (
    SELECT lineage_district_code, commune,
           count(DISTINCT commune_code) AS n,
           min(commune_code) AS old_commune_code
    FROM ranked
    GROUP BY ALL
),
resolved AS (
    SELECT b.lineage_district_code, b.commune, b.n,
           CASE WHEN b.n = 1 THEN b.old_commune_code END AS old_commune_code,
           CASE WHEN b.n = 1 THEN l.new_commune_code END AS new_commune_code,
           CASE WHEN b.n = 1 THEN l.split END AS split
    FROM best b
    LEFT JOIN ref.commune_lineage l ON l.old_commune_code = b.old_commune_code AND l.is_default
),
-- An HTX listed by two units in one year counts once: in the unit with the lowest code
-- (sql/README.md). Only the (year, reg_code) listed more than once need ranking; the rows
-- ranked after the first are the ones not counted.
htx_listings AS (
    SELECT year, reg_code, unit_code, source_file, sheet, row_number
    FROM located
    WHERE entity_type = 'HTX' AND reg_code IS NOT NULL
),
listed_twice AS (
    SELECT year, reg_code FROM htx_listings GROUP BY ALL HAVING count(*) > 1
),
not_counted AS (
    SELECT l.source_file, l.sheet, l.row_number
    FROM htx_listings l
    SEMI JOIN listed_twice t ON t.year = l.year AND t.reg_code = l.reg_code
    QUALIFY row_number() OVER (PARTITION BY l.year, l.reg_code
                               ORDER BY l.unit_code, l.source_file, l.sheet, l.row_number) > 1
)
SELECT
    r.year,
    r.entity_type,
    r.unit_code,
    r.unit_level,
    CASE WHEN r.unit_level = 'district' THEN r.unit_code END AS district_code,
    r.province_code,
    r.area_code,
    r.current_province_code,
    m.old_commune_code,
    CASE WHEN r.unit_level = 'commune' THEN r.unit_code ELSE m.new_commune_code END AS commune_code,
    CASE
        WHEN r.unit_level = 'commune' THEN 'reporting_unit'
        WHEN nullif(trim(r.commune), '') IS NULL THEN 'missing'
        WHEN m.n > 1 THEN 'ambiguous'
        WHEN m.new_commune_code IS NULL THEN 'unknown'
        WHEN m.split THEN 'split'
        ELSE 'matched'
    END AS commune_match,
    r.reg_code,
    r.name,
    r.commune,
    r.kind,
    r.established_on,
    r.sector,
    r.status,
    r.status = 'active' AS is_active,
    year(r.established_on) = r.year AS is_new,
    nc.row_number IS NULL AS is_counted,
    r.members,
    r.workers,
    r.revenue,
    r.profit,
    r.income,
    coalesce(r.workers, r.members) AS income_weight,
    r.ocop_stars,
    r.high_tech,
    r.source_file,
    r.sheet,
    r.row_number
FROM located r
LEFT JOIN resolved m
       ON r.unit_level = 'district'
      AND m.lineage_district_code = r.lineage_district_code AND m.commune = r.commune
LEFT JOIN not_counted nc
       ON r.entity_type = 'HTX'
      AND nc.source_file = r.source_file AND nc.sheet = r.sheet AND nc.row_number = r.row_number
