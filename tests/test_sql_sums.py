"""Deterministic sums (sql/README.md "Deterministic sums", issue 10): the DOUBLE figures summed by
core.agg_indicators (average revenue, profit, income) and marts.training_turns (amount) do not
depend on the order in which rows are added.

Hand-worked: 0.1 + 0.2 + 0.3 added left to right in DOUBLE is 0.6000000000000001, right to left
0.6; the exact decimal sum is 0.6, whose nearest DOUBLE is the literal 0.6. The average over the
3 rows is then 0.6 / 3 in DOUBLE, whatever order the rows come in."""

from __future__ import annotations

import warehouse_fixture as fx
from coop.warehouse.models import run_models

# 2022, Lạc Sơn (157): three active HTX, the only rows of the year; workers 1 so income weight 1
ROWS = [
    (2022, "157", "K1", "2019-01-01", "agriculture", "active", 5, 1, 0.1, -0.1, 0.1, None, False),
    (2022, "157", "K2", "2019-01-01", "agriculture", "active", 5, 1, 0.2, -0.2, 0.2, None, False),
    (2022, "157", "K3", "2019-01-01", "agriculture", "active", 5, 1, 0.3, -0.3, 0.3, None, False),
]
TRAINING = [
    (2022, "157", "K1", "training", 0.1, 1, "2022-03-01"),
    (2022, "157", "K2", "training", 0.2, 1, "2022-03-02"),
    (2022, "157", "K3", "training", 0.3, 1, "2022-03-03"),
]


def build(rows, training):
    con = fx.build()
    fx.insert(con, "raw.htx", fx.HTX_COLS, rows)
    fx.insert(con, "raw.ho_tro", fx.SUPPORT_COLS, training)
    run_models(con)
    return con


def figures(con):
    district = con.execute(
        "SELECT avg_revenue_mvnd, avg_profit_mvnd, avg_income_mvnd_month FROM marts.district_indicators "
        "WHERE year = 2022 AND district_code = '157' AND entity_type = 'HTX'").fetchall()
    province = con.execute(
        "SELECT avg_revenue_mvnd, avg_profit_mvnd, avg_income_mvnd_month FROM marts.province_indicators "
        "WHERE year = 2022 AND entity_type = 'HTX'").fetchall()
    training = con.execute("SELECT training_amount_mvnd FROM marts.training_turns WHERE year = 2022").fetchall()
    return district, province, training


def test_double_sums_do_not_depend_on_row_order():
    assert (0.1 + 0.2) + 0.3 != (0.3 + 0.2) + 0.1  # the premise: a DOUBLE sum depends on the order
    forward = figures(build(ROWS, TRAINING))
    backward = figures(build(ROWS[::-1], TRAINING[::-1]))
    avg = 0.6 / 3
    assert forward == backward == ([(avg, -avg, avg)], [(avg, -avg, avg)], [(0.6,)])


def test_whole_sums_stay_whole_and_absurd_values_keep_the_double_sum():
    rows = [r[:8] + (rev,) + r[9:] for r, rev in zip(ROWS, (1e13, 1.0, 2.5), strict=True)]
    con = build(rows, TRAINING[:2])
    (avg_revenue,), = con.execute(
        "SELECT avg_revenue_mvnd FROM marts.district_indicators "
        "WHERE year = 2022 AND district_code = '157' AND entity_type = 'HTX'").fetchall()
    assert avg_revenue == (1e13 + 1.0 + 2.5) / 3  # 1e13 is outside ±1e12: the DOUBLE average, exact here
    # the fixture's whole figures are unchanged: 2020 Lạc Sơn HTX revenue 10 and 200 (active: E1 200) -> 200
    (rev_2020,), = con.execute(
        "SELECT avg_revenue_mvnd FROM marts.district_indicators "
        "WHERE year = 2020 AND district_code = '157' AND entity_type = 'HTX'").fetchall()
    assert rev_2020 == 200.0
    assert con.execute("SELECT training_amount_mvnd FROM marts.training_turns WHERE year = 2022").fetchall() \
        == [(0.3,)]  # the exact 0.1 + 0.2 is 0.3; a DOUBLE sum would give 0.30000000000000004
