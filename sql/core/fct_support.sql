-- @description Hỗ trợ HTX — support allocations with whether the supported code is known to any HTX register
-- @column year: Năm báo cáo — report year of the HO_TRO form
-- @column unit_code: Mã đơn vị báo cáo — GSO code of the unit (district up to 2024, commune from 2025) that reported the support
-- @column reg_code: Mã số HTX — registration code of the supported cooperative
-- @column support_type: Nội dung hỗ trợ — support type: establishment | training | trade_promotion | technology | infrastructure | credit | other
-- @column amount_mvnd: Kinh phí — amount, million VND
-- @column participants: Số lượt người — participants (training), persons
-- @column decision_no: Số quyết định — decision number
-- @column allocated_on: Ngày quyết định — allocation date
-- @column allocated_year: Năm bố trí — year of allocated_on
-- @column in_register: Có trong danh sách HTX — the reg_code appears in an HTX register of some year and district
SELECT
    s.year,
    s.unit_code,
    s.reg_code,
    s.support_type,
    s.amount_mvnd,
    s.participants,
    s.decision_no,
    s.allocated_on,
    s.allocated_year,
    EXISTS (SELECT 1 FROM staging.htx h WHERE h.reg_code = s.reg_code) AS in_register,
    s.source_file,
    s.sheet,
    s.row_number
FROM staging.support s
