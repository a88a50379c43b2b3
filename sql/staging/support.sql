-- @description Hỗ trợ HTX (đã làm sạch) — support allocated to cooperatives, one row per accepted HO_TRO row
-- @column year: Năm báo cáo — report year of the HO_TRO form
-- @column unit_code: Mã đơn vị báo cáo — GSO code of the reporting unit: district (3 digits, years up to 2024) or commune (5 digits, from 2025)
-- @column reg_code: Mã số HTX — registration code of the supported cooperative
-- @column support_type: Nội dung hỗ trợ — support type: establishment | training | trade_promotion | technology | infrastructure | credit | other
-- @column amount_mvnd: Kinh phí — amount, million VND
-- @column participants: Số lượt người — participants (training), persons
-- @column decision_no: Số quyết định — decision number
-- @column allocated_on: Ngày quyết định — allocation date
-- @column allocated_year: Năm bố trí — year of allocated_on
SELECT
    year::INTEGER AS year,
    unit_code,
    reg_code,
    support_type,
    amount AS amount_mvnd,
    participants,
    decision_no,
    allocated_on,
    year(allocated_on)::INTEGER AS allocated_year,
    source_file,
    sheet,
    row_number
FROM raw.ho_tro
