"""The rules, one test per rule: read as the specification of each (CONTRACT.md "Rules" states them in words).

Every test runs rules.process, the one implementation, on raw values as the reader gives them (null for an empty
field). Amounts and running totals come back as Decimal (their text parsed), dates as date."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from support import PROCESSING_DATE, row, run_rules

from csv_ingest.engine import rules


def names(values):
    return [r["name"] for r in run_rules([row(id_=str(i), name=n) for i, n in enumerate(values)])]


# --- name -----------------------------------------------------------------------------------------------------------


def test_name_is_trimmed_and_inner_whitespace_becomes_one_space():
    assert names(["  john   doe ", "\u00a0élodie\tdupont\u00a0", "ann\nlee"]) == [
        "John Doe",
        "Élodie Dupont",
        "Ann Lee",
    ]


def test_name_inner_no_break_and_ideographic_spaces_become_one_space():
    assert names(["jean\u00a0paul", "ann\u3000\u3000lee", "li\u202fwei"]) == ["Jean Paul", "Ann Lee", "Li Wei"]


def test_name_words_are_title_cased_with_a_capital_after_a_hyphen_or_an_apostrophe():
    assert names(["jOHN SMITH", "jean-luc picard", "o'brien", "ANNE-MARIE o\u2019neil"]) == [
        "John Smith",
        "Jean-Luc Picard",
        "O'Brien",
        "Anne-Marie O\u2019Neil",
    ]


def test_name_mc_prefix_keeps_its_capital():
    assert names(["mcdonald", "MCDONALD", "Ronald McDonald", "mary mcbride-mccoy"]) == [
        "McDonald",
        "McDonald",
        "Ronald McDonald",
        "Mary McBride-McCoy",
    ]


def test_name_particles_are_lower_case_except_as_the_first_word():
    assert names(["jan VAN DER BERG", "ludwig van beethoven", "van der berg", "Maria De La Cruz"]) == [
        "Jan van der Berg",
        "Ludwig van Beethoven",
        "Van der Berg",
        "Maria de la Cruz",
    ]


def test_name_non_latin_scripts_are_kept_and_empty_is_missing():
    out = run_rules(
        [row(name="李 小龍"), row(id_="2", name="ΟΔΥΣΣΕΑΣ"), row(id_="3", name="   "), row(id_="4", name=None)]
    )
    assert [(r["name"], r["data_quality_issues"]) for r in out] == [
        ("李 小龍", ""),
        ("Οδυσσεασ", ""),  # simple case mappings: no final-sigma rule (documented)
        (None, "missing_name"),
        (None, "missing_name"),
    ]


# --- email ----------------------------------------------------------------------------------------------------------


def test_email_is_trimmed_kept_as_written_and_flagged_by_the_pattern():
    emails = [" ann@example.com ", "ann@example", "a.b+c@sub.example.org", "no at sign", "a@b.c0", None]
    out = run_rules([row(id_=str(i), email=e) for i, e in enumerate(emails)])
    assert [(r["email"], r["email_valid"], r["data_quality_issues"]) for r in out] == [
        ("ann@example.com", True, ""),
        ("ann@example", False, "invalid_email"),
        ("a.b+c@sub.example.org", True, ""),
        ("no at sign", False, "invalid_email"),
        ("a@b.c0", False, "invalid_email"),
        (None, False, "missing_email"),
    ]


# --- date -----------------------------------------------------------------------------------------------------------


def test_dates_are_read_in_the_configured_formats_and_must_name_a_real_day():
    dates = ["01-04-2025", "2025-04-02", "31-02-2025", "2025-13-01", "1/4/2025", "00-01-2025", ""]
    out = run_rules([row(id_=str(i), date=d) for i, d in enumerate(dates)])
    assert [(r["date"], r["data_quality_issues"]) for r in out] == [
        (dt.date(2025, 4, 1), ""),
        (dt.date(2025, 4, 2), ""),
        (None, "invalid_date"),
        (None, "invalid_date"),
        (None, "invalid_date"),
        (None, "invalid_date"),
        (None, "missing_date"),
    ]


def test_february_29_exists_in_leap_years_only_and_centuries_leap_only_when_divisible_by_400():
    dates = ["29-02-2024", "29-02-2025", "29-02-1900", "29-02-2000", "29-02-2100", "28-02-1900", "30-02-2024"]
    out = run_rules([row(id_=str(i), date=d) for i, d in enumerate(dates)])
    assert [r["date"] for r in out] == [
        dt.date(2024, 2, 29),
        None,
        None,
        dt.date(2000, 2, 29),
        None,
        dt.date(1900, 2, 28),
        None,
    ]


def test_year_zero_is_not_a_date():
    out = run_rules([row(date="01-01-0000"), row(id_="2", date="01-01-0001")])
    assert [r["date"] for r in out] == [None, dt.date(1, 1, 1)]


def test_every_month_ends_on_its_own_last_day():
    last = ["31-01", "28-02", "31-03", "30-04", "31-05", "30-06", "31-07", "31-08", "30-09", "31-10", "30-11", "31-12"]
    after = ["32-01", "29-02", "32-03", "31-04", "32-05", "31-06", "32-07", "32-08", "31-09", "32-10", "31-11", "32-12"]
    out = run_rules([row(id_=str(i), date=f"{d}-2025") for i, d in enumerate(last + after)])
    assert [r["date"] for r in out] == [
        dt.date(2025, 1, 31),
        dt.date(2025, 2, 28),
        dt.date(2025, 3, 31),
        dt.date(2025, 4, 30),
        dt.date(2025, 5, 31),
        dt.date(2025, 6, 30),
        dt.date(2025, 7, 31),
        dt.date(2025, 8, 31),
        dt.date(2025, 9, 30),
        dt.date(2025, 10, 31),
        dt.date(2025, 11, 30),
        dt.date(2025, 12, 31),
    ] + [None] * 12


def test_a_date_is_the_calendar_day_it_names_in_any_century():
    dates = ["01-03-1900", "15-07-1999", "29-02-2000", "01-03-2000", "01-04-2000", "31-12-2003", "01-01-1600"]
    dates += ["28-02-0400", "01-03-0400", "15-10-1582", "31-12-9999"]
    out = run_rules([row(id_=str(i), date=d) for i, d in enumerate(dates)])
    assert [r["date"] for r in out] == [
        dt.date(1900, 3, 1),
        dt.date(1999, 7, 15),
        dt.date(2000, 2, 29),
        dt.date(2000, 3, 1),
        dt.date(2000, 4, 1),
        dt.date(2003, 12, 31),
        dt.date(1600, 1, 1),
        dt.date(400, 2, 28),
        dt.date(400, 3, 1),
        dt.date(1582, 10, 15),
        dt.date(9999, 12, 31),
    ]


def test_the_first_configured_format_that_gives_a_real_day_wins():
    formats = ["MM-dd-yyyy", "dd-MM-yyyy"]
    out = run_rules([row(date="04-01-2025"), row(id_="2", date="13-01-2025")], date_formats=formats)
    # 04-01: both formats fit, the first (April 1st) wins; 13-01: no month 13, so the second gives January 13th.
    assert [r["date"] for r in out] == [dt.date(2025, 4, 1), dt.date(2025, 1, 13)]


def test_date_formats_are_configurable_and_a_bad_pattern_is_refused():
    out = run_rules([row(date="04/01/2025"), row(id_="2", date="01-04-2025")], date_formats=["MM/dd/yyyy"])
    assert [r["date"] for r in out] == [dt.date(2025, 4, 1), None]
    with pytest.raises(ValueError, match="needs exactly one year"):
        rules.date_format_regex("dd-MM")


# --- amount ---------------------------------------------------------------------------------------------------------


def amounts(values):
    out = run_rules([row(id_=str(i), amount=a) for i, a in enumerate(values)])
    return [(r["amount"], r["amount_category"], r["data_quality_issues"]) for r in out]


def test_amount_drops_currency_symbols_spaces_and_thousands_commas_and_keeps_the_sign():
    assert amounts(["$1,234.50", "-20", "€ 75", "-$5.5", "+.5", "£ 1 000"]) == [
        (Decimal("1234.5"), "high", ""),
        (Decimal(-20), "low", ""),
        (Decimal(75), "low", ""),
        (Decimal("-5.5"), "low", ""),
        (Decimal("0.5"), "low", ""),
        (Decimal(1000), "high", ""),
    ]


def test_amounts_that_are_not_numbers_are_invalid_and_empty_ones_missing():
    assert amounts(["", "abc", "1.234,50", "12,34", "1e5", "-2+3", None]) == [
        (None, None, "missing_amount"),
        (None, None, "invalid_amount"),
        (None, None, "invalid_amount"),
        (None, None, "invalid_amount"),
        (None, None, "invalid_amount"),
        (None, None, "invalid_amount"),
        (None, None, "missing_amount"),
    ]


def test_amounts_have_at_most_15_integer_digits():
    assert [a for a, _, _ in amounts(["999999999999999", "999,999,999,999,999", "1000000000000000"])] == [
        Decimal(999999999999999),
        Decimal(999999999999999),
        None,
    ]


def test_amounts_are_exact_and_more_than_9_decimals_are_rounded_half_up():
    assert [a for a, _, _ in amounts(["0.1", "1.123456789", "1.1234567895", "-1.1234567895", "0.0000000004"])] == [
        Decimal("0.1"),
        Decimal("1.123456789"),
        Decimal("1.12345679"),
        Decimal("-1.12345679"),
        Decimal(0),
    ]


def test_amount_category_boundaries_low_below_100_medium_below_200_high_from_200():
    out = amounts(["99.999999999", "100", "199.99", "200", "0", "-500"])
    assert [c for _, c, _ in out] == ["low", "medium", "medium", "high", "low", "low"]


# --- status ---------------------------------------------------------------------------------------------------------


def test_status_is_trimmed_and_lower_cased():
    out = run_rules([row(status="  ACTIVE "), row(id_="2", status="Pending"), row(id_="3", status="")])
    assert [(r["status"], r["data_quality_issues"]) for r in out] == [
        ("active", ""),
        ("pending", ""),
        (None, "missing_status"),
    ]


# --- issues ---------------------------------------------------------------------------------------------------------


def test_quality_issues_are_all_listed_in_a_stable_order():
    out = run_rules([(None, "", "bad", "31-02-2025", "abc", None), row()])
    assert out[0]["data_quality_issues"] == (
        "missing_id;missing_name;invalid_email;invalid_date;invalid_amount;missing_status"
    )
    assert out[1]["data_quality_issues"] == ""


def test_duplicate_id_is_flagged_on_every_row_with_that_id():
    out = run_rules([row(id_="7", name="A B"), row(id_="7", name="C D"), row(id_="8")])
    assert [(r["id"], r["data_quality_issues"]) for r in out] == [
        ("7", "duplicate_id"),
        ("7", "duplicate_id"),
        ("8", ""),
    ]


def test_rows_without_an_id_are_not_duplicate_ids_of_each_other():
    out = run_rules([row(id_=None, name="A B"), row(id_=None, name="C D"), row(id_="8")])
    assert [r["data_quality_issues"] for r in out] == ["missing_id", "missing_id", ""]


# --- exact duplicates -----------------------------------------------------------------------------------------------


def test_exact_duplicates_are_removed_and_the_first_line_kept():
    out = run_rules([row(), row(id_="2"), row(), row()])
    assert [(r["id"], r["line_number"], r["data_quality_issues"]) for r in out] == [("1", 2, ""), ("2", 3, "")]


def test_exact_duplicates_without_an_id_are_removed_too_and_are_not_duplicate_ids():
    out = run_rules([row(id_=None), row(id_=None, name="X Y"), row(id_="  "), row(id_="1"), row(id_=None)])
    kept = [(r["line_number"], r["data_quality_issues"]) for r in out]
    assert kept == [(2, "missing_id"), (3, "missing_id"), (5, "")]


def test_an_upload_without_rows_gives_no_rows():
    assert run_rules([]) == []


def test_exact_duplicates_are_compared_on_cleaned_values():
    same = [
        row(),
        row(id_=" 1 ", name="ANN   LEE", email=" ann@example.com", date="2025-04-01", amount="$10.00", status="ACTIVE"),
    ]
    assert [r["line_number"] for r in run_rules(same)] == [2]


def test_rows_with_different_invalid_values_are_not_duplicates():
    out = run_rules([row(date="garbage"), row(date="rubbish"), row(amount="x"), row(amount="y")])
    assert [r["line_number"] for r in out] == [2, 3, 4, 5]


def test_exact_duplicates_need_the_very_same_values():
    rows = [row(name="a\x1fb", email="c"), row(name="a", email="b\x1fc"), row(status="\x00"), row(status=None)]
    rows += [row(name="a:b", email="c"), row(name="a", email="b:c")]
    assert [r["line_number"] for r in run_rules(rows)] == [2, 3, 4, 5, 6, 7]


def test_rows_that_differ_only_by_a_valid_date_or_amount_are_not_duplicates():
    rows = [row(date="01-04-2025"), row(date="02-04-2025"), row(amount="10"), row(amount="20"), row(amount="10.5")]
    rows.append(row(amount="10.25"))
    assert [r["line_number"] for r in run_rules(rows)] == [2, 3, 5, 6, 7]  # line 4 is line 2 again


def test_rows_with_the_same_missing_values_are_exact_duplicates():
    rows = [row(email=None, amount=None), row(email=" ", amount=None), row(email=None, amount="")]
    assert [r["line_number"] for r in run_rules(rows)] == [2]


# --- running total --------------------------------------------------------------------------------------------------


def test_running_total_per_status_ordered_by_date_then_numeric_id():
    rows = [
        row(id_="10", date="02-04-2025", amount="1", status="active"),
        row(id_="2", date="02-04-2025", amount="10", status="active"),
        row(id_="3", date="01-04-2025", amount="100", status="active"),
        row(id_="4", date="01-04-2025", amount="1000", status="pending"),
        row(id_="5", date="03-04-2025", amount="", status="active"),
    ]
    # active order: id 3 (1 Apr), id 2, id 10 (2 Apr, 2 < 10 numerically), id 5 (no amount: total unchanged)
    assert [(r["id"], r["running_total_by_status"]) for r in run_rules(rows)] == [
        ("10", Decimal(111)),
        ("2", Decimal(110)),
        ("3", Decimal(100)),
        ("4", Decimal(1000)),
        ("5", Decimal(111)),
    ]


def test_running_total_ties_on_date_and_id_are_summed_in_line_order():
    rows = [row(name="B", amount="1"), row(name="A", amount="10"), row(name="C", amount="100")]
    out = run_rules(rows)
    assert [(r["name"], r["running_total_by_status"]) for r in out] == [
        ("B", Decimal(1)),
        ("A", Decimal(11)),
        ("C", Decimal(111)),
    ]


def test_running_total_is_null_until_the_first_amount_and_rows_without_status_have_their_own():
    rows = [row(id_="1", status="", amount=""), row(id_="2", status="a", amount="10"), row(id_="3", status=" ")]
    rows.append(row(id_="4", status=None, amount="100", date="02-04-2025"))
    out = run_rules(rows)
    assert [(r["id"], r["status"], r["running_total_by_status"]) for r in out] == [
        ("1", None, None),
        ("2", "a", Decimal(10)),
        ("3", None, Decimal(10)),
        ("4", None, Decimal(110)),
    ]


def test_running_total_is_exact_and_crosses_zero_without_sign_errors():
    amounts_ = ["0.1", "0.2", "-0.35", "-1", "2.05", "0.0000000005", "1000000000000.01"]
    out = run_rules([row(id_=str(i), amount=a) for i, a in enumerate(amounts_)])
    assert [r["running_total_by_status"] for r in out] == [
        Decimal("0.1"),
        Decimal("0.3"),
        Decimal("-0.05"),
        Decimal("-1.05"),
        Decimal(1),
        Decimal("1.000000001"),
        Decimal("1000000000001.010000001"),
    ]


def test_running_total_lands_exactly_on_negative_values():
    out = run_rules([row(id_=str(i), amount=a) for i, a in enumerate(["-1.5", "-0.5", "1.000000001", "-0.5"])])
    assert [r["running_total_by_status"] for r in out] == [
        Decimal("-1.5"),
        Decimal(-2),
        Decimal("-0.999999999"),
        Decimal("-1.499999999"),
    ]


def test_running_total_skips_missing_and_invalid_amounts_whatever_their_number():
    amounts_ = ["10", "10", None, "10", "abc", "10"]
    out = run_rules([row(id_=str(i), amount=a, name=f"N{i}") for i, a in enumerate(amounts_)])
    assert [(r["amount"], r["running_total_by_status"]) for r in out] == [
        (Decimal(10), Decimal(10)),
        (Decimal(10), Decimal(20)),
        (None, Decimal(20)),
        (Decimal(10), Decimal(30)),
        (None, Decimal(30)),
        (Decimal(10), Decimal(40)),
    ]
    out = run_rules([row(id_=str(i), amount=a) for i, a in enumerate(["10", "abc", "5"])])
    assert [r["running_total_by_status"] for r in out] == [Decimal(10), Decimal(10), Decimal(15)]


def test_rows_without_status_never_join_another_status_total():
    rows = [row(id_="1", status="a", amount="1"), row(id_="2", status="b", amount="10"), row(id_="3", status=None)]
    assert [r["running_total_by_status"] for r in run_rules(rows)] == [Decimal(1), Decimal(10), Decimal(10)]


def test_running_totals_beyond_int64_stay_exact():
    # 10,000 of the largest amount (15 integer digits): the total passes int64's 9.2e18.
    rows = [row(id_=str(i), amount="999,999,999,999,999.5") for i in range(10_000)]
    rows += [row(id_="r1", status="refund", amount="-1.75"), row(id_="r2", status="refund", amount="0.5")]
    out = run_rules(rows)
    assert [out[i]["running_total_by_status"] for i in (0, 1, 4699, 9999, 10000, 10001)] == [
        Decimal("999999999999999.5"),
        Decimal(1999999999999999),
        Decimal(4699999999999997650),
        Decimal(9999999999999995000),
        Decimal("-1.75"),
        Decimal("-1.25"),
    ]


def test_running_total_stays_exact_past_what_int64_holds():
    # 5,000 of the largest amount: past 2**62 whole units the sums go on in Python integers, still exact; a row
    # before the status's first amount still has no total.
    big = "999999999999999.999999999"
    out = run_rules([row(id_="0", amount=None)] + [row(id_=str(i), amount=big) for i in range(1, 5001)])
    totals = [r["running_total_by_status"] for r in out]
    assert totals[0] is None
    assert totals[1] == Decimal(big)
    assert totals[-1] == Decimal(big) * 5000
    assert totals[4611] == Decimal(big) * 4611


EXACT_VALUES = [  # (units, nanos, valid) -> the decimal Parquet holds
    ((0, 0, True), Decimal(0)),
    ((12, 500_000_000, True), Decimal("12.5")),
    ((0, -500_000_000, True), Decimal("-0.5")),
    ((-3, -1, True), Decimal("-3.000000001")),
    ((999_999_999_999_999, 999_999_999, True), Decimal("999999999999999.999999999")),
    ((-999_999_999_999_999, -999_999_999, True), Decimal("-999999999999999.999999999")),
    ((9_223_372_034, 999_999_999, True), Decimal("9223372034.999999999")),
    ((9_223_372_035, 0, True), Decimal(9223372035)),
    ((9_223_372_036, 999_999_999, True), Decimal("9223372036.999999999")),  # scaled: past int64
    ((-9_223_372_036, -999_999_999, True), Decimal("-9223372036.999999999")),
    ((7, 7, False), None),
]


@pytest.mark.parametrize(("given", "expected"), EXACT_VALUES)
def test_exact_values_become_decimals_of_scale_9_whatever_their_size(given, expected):
    import numpy as np

    from csv_ingest.contract import output

    units, nanos, valid = given
    for type_ in (output.AMOUNT_TYPE, output.TOTAL_TYPE):
        got = rules.decimal_values(np.array([units]), np.array([nanos]), np.array([valid]), type_)
        assert got.type == type_
        assert got.to_pylist() == [expected]


def test_exact_values_of_every_size_together_and_beyond_int64_become_decimals():
    import numpy as np

    from csv_ingest.contract import output

    units, nanos, valid = (np.array(v) for v in zip(*[g for g, _ in EXACT_VALUES], strict=True))
    expected = [e for _, e in EXACT_VALUES]
    small = np.abs(units) < 9_000_000_000
    got = rules.decimal_values(units[small], nanos[small], valid[small], output.TOTAL_TYPE).to_pylist()
    assert got == [e for (u, _, _), e in EXACT_VALUES if abs(u) < 9_000_000_000]
    assert rules.decimal_values(units, nanos, valid, output.TOTAL_TYPE).to_pylist() == expected
    huge = np.array([10**20, -(10**20)], dtype=object)  # totals beyond int64 come as Python integers
    got = rules.decimal_values(huge, np.array([1, -1]), np.array([True, True]), output.TOTAL_TYPE).to_pylist()
    assert got == [Decimal("100000000000000000000.000000001"), Decimal("-100000000000000000000.000000001")]


# --- constant columns -----------------------------------------------------------------------------------------------


def test_processing_date_is_one_value_and_source_file_is_the_key():
    out = run_rules([row(), row(id_="2")], source_file="input/sales/april.csv")
    assert {(r["processing_date"], r["source_file"]) for r in out} == {(PROCESSING_DATE, "input/sales/april.csv")}


def test_stats_of_one_upload_count_removed_duplicates_and_issues_separately():
    raw = [row(), row(), row(id_="2", email="bad"), row(id_="2", email="bad2"), row(id_="3", amount="x")]
    import pyarrow as pa

    columns = {c: pa.array([r[i] for r in raw], pa.string()) for i, c in enumerate(rules.REQUIRED_COLUMNS)}
    processed = rules.process(columns, pa.array(range(2, 7), pa.int64()), "k", PROCESSING_DATE)
    assert (processed.table.num_rows, processed.duplicates_removed) == (4, 1)
    assert processed.quality_issues == {"duplicate_id": 2, "invalid_email": 2, "invalid_amount": 1}


# --- several uploads at once (how a task processes a batch of small uploads) ------------------------------------------


def test_uploads_processed_together_keep_every_rule_within_their_own_rows():
    import pyarrow as pa

    first = [row(id_="7", amount="10"), row(id_="7", name="C D", amount="1"), row(id_="1", amount="5")]
    second = [row(id_="7", amount="10"), row(id_="2", amount="100"), row(id_="2", amount="100")]
    third = [row(id_="9", amount="1000", status="pending"), row(id_="1", amount="5")]
    rows = first + second + third
    columns = {c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(rules.REQUIRED_COLUMNS)}
    lines = pa.array([2, 3, 4, 2, 3, 4, 2, 3], pa.int64())
    uploads = [("input/a.csv", 3), ("input/b.csv", 3), ("input/c.csv", 2)]

    a, b, c = rules.process_uploads(columns, lines, uploads, PROCESSING_DATE)

    def view(p):
        return [
            (
                r["source_file"],
                r["line_number"],
                r["id"],
                r["data_quality_issues"],
                Decimal(r["running_total_by_status"]),
            )
            for r in p.table.to_pylist()
        ]

    # a: id 7 twice (duplicate ids); totals in id order 1 (5), 7 (10), 7 (1).
    assert view(a) == [
        ("input/a.csv", 2, "7", "duplicate_id", Decimal(15)),
        ("input/a.csv", 3, "7", "duplicate_id", Decimal(16)),
        ("input/a.csv", 4, "1", "", Decimal(5)),
    ]
    # b: its first row equals a's first row (not a duplicate across uploads, id 7 not a duplicate id here); lines 3
    # and 4 are exact duplicates within b: line 4 removed. Totals start again from zero.
    assert view(b) == [("input/b.csv", 2, "7", "", Decimal(110)), ("input/b.csv", 3, "2", "", Decimal(100))]
    assert view(c) == [("input/c.csv", 2, "9", "", Decimal(1000)), ("input/c.csv", 3, "1", "", Decimal(5))]
    assert [(p.duplicates_removed, p.quality_issues) for p in (a, b, c)] == [(0, {"duplicate_id": 2}), (1, {}), (0, {})]


def test_two_uploads_processed_together_stay_apart_and_ids_missing_are_never_repeated():
    import pyarrow as pa

    first = [row(id_="1"), row(id_="2")]
    second = [row(id_=None, name="A"), row(id_="2"), row(id_=None, name="B"), row(id_="1", name="C")]
    rows = first + second
    columns = {c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(rules.REQUIRED_COLUMNS)}
    a, b = rules.process_uploads(columns, pa.array([2, 3, 2, 3, 4, 5], pa.int64()), [("a", 2), ("b", 4)], "t")
    assert [r["data_quality_issues"] for r in a.table.to_pylist()] == ["", ""]
    assert [r["data_quality_issues"] for r in b.table.to_pylist()] == ["missing_id", "", "missing_id", ""]
    assert [(p.duplicates_removed, p.quality_issues) for p in (a, b)] == [(0, {}), (0, {"missing_id": 2})]


def test_uploads_without_rows_processed_together_give_empty_results():
    import pyarrow as pa

    columns = {c: pa.array([], pa.string()) for c in rules.REQUIRED_COLUMNS}
    a, b = rules.process_uploads(columns, pa.array([], pa.int64()), [("a", 0), ("b", 0)], PROCESSING_DATE)
    assert [(p.table.num_rows, p.duplicates_removed, p.quality_issues) for p in (a, b)] == [(0, 0, {}), (0, 0, {})]


def test_uploads_processed_together_must_account_for_every_row():
    import pyarrow as pa

    columns = {c: pa.array(["x"], pa.string()) for c in rules.REQUIRED_COLUMNS}
    with pytest.raises(ValueError, match="uploads hold 2 rows, 1 given"):
        rules.process_uploads(columns, pa.array([2], pa.int64()), [("a", 1), ("b", 1)], PROCESSING_DATE)


@pytest.mark.parametrize("threads", [2, 4])
def test_rows_cleaned_in_slices_on_several_threads_come_back_whole_and_in_order(threads):
    import pyarrow as pa

    rows = [row(id_="1", name="ann lee"), row(id_="x", email="bad", date="12/31/2025", amount="-2.5", status="DONE")]
    rows += [row(id_=None, name=None, date="2025-01-02", amount="abc"), row(id_="4", amount="1,000"), row(id_="5")]
    raw = {c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(rules.REQUIRED_COLUMNS)}
    # 5 rows in slices of at most 2 rows: 2 slices on 2 threads, or 3 slices when 4 threads are allowed.
    cleaned = rules.clean_in_parallel(raw, ["dd-MM-yyyy", "yyyy-MM-dd", "MM/dd/yyyy"], threads, rows_per_chunk=2)
    assert cleaned.id.to_pylist() == ["1", "x", None, "4", "5"]
    assert cleaned.name.to_pylist() == ["Ann Lee", "Ann Lee", None, "Ann Lee", "Ann Lee"]
    assert cleaned.email_valid.to_pylist() == [True, False, True, True, True]
    assert cleaned.date.to_pylist() == [
        dt.date(2025, 4, 1),
        dt.date(2025, 12, 31),
        dt.date(2025, 1, 2),
        dt.date(2025, 4, 1),
        dt.date(2025, 4, 1),
    ]
    assert cleaned.amounts.units.tolist() == [10, -2, 0, 1000, 10]
    assert cleaned.amounts.nanos.tolist() == [0, -500_000_000, 0, 0, 0]
    assert cleaned.amounts.valid.tolist() == [True, True, False, True, True]
    assert cleaned.status.to_pylist() == ["active", "done", "active", "active", "active"]
    assert cleaned.id_number.to_pylist() == [1, None, None, 4, 5]
    assert rules.issue_text(cleaned.mask).to_pylist() == [
        "",
        "invalid_email",
        "missing_id;missing_name;invalid_amount",
        "",
        "",
    ]
    # The text exact duplicates are compared on: each cleaned value after its length in bytes (N: missing).
    assert rules.row_key(cleaned).to_pylist()[2] == "N::N::15:ann@example.com:10:2025-01-02:3:abc:6:active"


# --- large uploads and the helpers other code calls (split.py) --------------------------------------------------------


def test_a_large_upload_of_distinct_names_and_amounts_gets_the_same_rules_as_a_small_one():
    # More than twice DISTINCT_SAMPLE (16,384) rows, nearly all distinct: the rules then run on every row, not
    # once per distinct value; the answers are the same.
    n = 2 * 16_384 + 100
    out = run_rules([row(id_=str(i), name=f"ann  lee{i}", amount=f" {i}.25", status="Active") for i in range(n)])
    assert [r["name"] for r in out[:2]] == ["Ann Lee0", "Ann Lee1"]
    assert [r["name"] for r in out] == [f"Ann Lee{i}" for i in range(n)]
    assert [r["amount"] for r in out] == [Decimal(f"{i}.25") for i in range(n)]
    assert {r["status"] for r in out} == {"active"}


def test_duplicate_ids_flags_every_row_whose_id_is_on_another_row_of_its_upload():
    import numpy as np
    import pyarrow as pa

    ids = pa.array(["a", "b", "a", None, None, "c", "b", "c"], pa.string())
    assert rules.duplicate_ids(ids).tolist() == [True, True, True, False, False, True, True, True]
    upload = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert rules.duplicate_ids(ids, upload).tolist() == [True, False, True, False, False, True, False, True]
    assert rules.duplicate_ids(pa.array([], pa.string())).tolist() == []


def test_ids_group_by_their_text_whether_or_not_they_are_plain_numbers():
    # id_groups codes plain whole numbers by their number (faster); "007", "7", "-0", "0", " 7" and text ids must
    # still group exactly by their text: the same partition as grouping the texts themselves.
    import random

    import numpy as np
    import pyarrow as pa

    rng = random.Random(13)
    pool = ["7", "007", "-0", "0", "-7", "70", "999999999999999999", "-999999999999999999", "1e3", "x7", "a", "b", None]
    for trial in range(200):
        n = rng.randint(0, 40)
        if trial % 3 == 0:  # every id a plain number
            values = [str(rng.randint(-50, 50)) for _ in range(n)]
        else:
            values = [rng.choice(pool) for _ in range(n)]
        ids = pa.array(values, pa.string())
        number = pa.array([int(v) if v is not None and v.lstrip("-").isdigit() else None for v in values], pa.int64())
        groups = rules.id_groups(ids, None, number)
        assert len(groups) == n
        for i in range(n):
            assert (groups[i] == -1) == (values[i] is None), values
            for j in range(n):
                if values[i] is not None and values[j] is not None:
                    assert (groups[i] == groups[j]) == (values[i] == values[j]), (values[i], values[j])
        upload = np.array([rng.randint(0, 1) for _ in range(n)], np.int64)
        assert rules.repeated(rules.id_groups(ids, upload, number)).tolist() == [
            v is not None and sum(1 for k in range(n) if values[k] == v and upload[k] == upload[i]) > 1
            for i, v in enumerate(values)
        ]


def test_a_big_upload_whose_work_runs_side_by_side_gets_the_same_rows_and_counts(monkeypatch):
    # From PARALLEL_TAIL_ROWS rows, the running-total order (of every row) and the totals run on another thread;
    # the kept rows' order is cut from every row's order. Same rows, totals and issue counts as one after the other,
    # with exact duplicates dropped from the middle of each status's order and repeated ids.
    import random

    rng = random.Random(5)
    rows = []
    for i in range(3_000):
        r = row(
            id_=str(rng.randint(1, 900)),
            date=f"0{rng.randint(1, 9)}-04-2025",
            amount=f"{rng.randint(-50, 500)}.{rng.randint(0, 99):02d}",
            status=rng.choice(["a", "b", "c", None]),
        )
        rows += [r, r] if i % 7 == 0 else [r]

    def processed():
        raw = {c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(rules.REQUIRED_COLUMNS)}
        return rules.process(raw, pa.array(range(2, len(rows) + 2), pa.int64()), "input/t.csv", PROCESSING_DATE)

    monkeypatch.setattr(rules, "PARALLEL_TAIL_ROWS", 10**9)
    one_after_the_other = processed()
    monkeypatch.setattr(rules, "PARALLEL_TAIL_ROWS", 0)
    side_by_side = processed()
    assert one_after_the_other.duplicates_removed >= 3_000 // 7
    assert side_by_side.table.equals(one_after_the_other.table)
    assert side_by_side.duplicates_removed == one_after_the_other.duplicates_removed
    assert side_by_side.quality_issues == one_after_the_other.quality_issues


def test_first_by_line_of_no_rows_is_no_rows():
    import pyarrow as pa

    assert rules.first_by_line(pa.array([], pa.string()), pa.array([], pa.int64())).tolist() == []


def _reference_order_key(status, date, number, row_id, line, upload=0):
    # The running-total order written out: upload, status, date, id_number, id, line; a missing value after every
    # present one; strings byte by byte.
    def last(value, present):
        return (value is None, present if value is not None else 0)

    return (
        upload,
        last(status, status.encode() if status is not None else b""),
        last(date, date),
        last(number, number),
        last(row_id, row_id.encode() if row_id is not None else b""),
        line,
    )


@pytest.mark.parametrize("wide", [False, True])
def test_running_total_order_is_status_date_id_number_id_text_then_line_with_missing_values_last(wide):
    # Random rows against the order written out in Python. `wide`: ids and line numbers so far apart that the keys
    # cannot share one int64 (the other path). Whole-number ids written otherwise ("007", "-0") tie with the plain
    # ones on their number and are then ordered by their text.
    import random

    import numpy as np

    rng = random.Random(29 + wide)
    statuses = ["paid", "Paid", "pending", "é", "", None]
    ids = ["7", "007", "-0", "0", "-7", "70", "x7", "a", "", None]
    for trial in range(150):
        n = rng.randint(0, 60)
        plain_only = trial % 3 == 0
        status = [rng.choice(statuses) for _ in range(n)]
        date = [rng.choice([None, *range(-3, 4)]) if trial % 2 else rng.randint(18000, 18005) for _ in range(n)]
        if plain_only:
            row_id = [str(rng.randint(-5, 5) * (10**17 if wide else 1)) for _ in range(n)]
        else:
            row_id = [rng.choice(ids) for _ in range(n)]
        number = [int(v) if v and v.lstrip("-").isdigit() else None for v in row_id]
        line = rng.sample(range(1, 10**15 if wide else 200), n)
        upload = [rng.randint(0, 2) for _ in range(n)] if trial % 4 == 1 else None
        order = rules.running_total_order(
            pa.array(status, pa.string()),
            pa.array(date, pa.date32()),
            pa.array(number, pa.int64()),
            pa.array(row_id, pa.string()),
            pa.array(line, pa.int64()),
            np.array(upload, np.int64) if upload is not None else None,
        )
        keys = [
            _reference_order_key(status[i], date[i], number[i], row_id[i], line[i], upload[i] if upload else 0)
            for i in range(n)
        ]
        assert [int(i) for i in order] == sorted(range(n), key=lambda i: keys[i])


def test_plainly_written_amounts_are_read_exactly_as_the_pattern_reads_them():
    # parse_amounts reads plain amounts ([+-]digits[.digits], at most 9 decimals) by a decimal cast and the others by
    # the patterns: the same units and nanos either way, including past int64 once scaled (>= 9.2 billion).
    import random

    import numpy as np

    by_hand = {
        "123456789012345.5": (123456789012345, 500000000, True),
        "-9223372036.854775808": (-9223372036, -854775808, True),
        "+.5": (0, 500000000, True),
        "-0": (0, 0, True),
        "0.000000001": (0, 1, True),
        "1.": (0, 0, False),
        "1234567890123456": (0, 0, False),
        "1.0000000005": (1, 1, True),  # 10 decimals: rounded half up (the patterns' path)
    }
    got = rules.parse_amounts(pa.array(list(by_hand), pa.string()))
    assert [(int(u), int(n), bool(v)) for u, n, v in zip(got.units, got.nanos, got.valid, strict=True)] == list(
        by_hand.values()
    )
    rng = random.Random(5)
    alphabet = "0123456789" * 3 + ".+-,$ €e"
    for _ in range(400):
        values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 22))) for _ in range(25)] + [None]
        for array in (pa.array(values, pa.string()), pa.array(values, pa.large_string()).slice(2)):
            fast, reference = rules.parse_amounts(array), rules._amounts_by_pattern(array)
            for a, b in ((fast.units, reference.units), (fast.nanos, reference.nanos), (fast.valid, reference.valid)):
                assert np.array_equal(a, b), array.to_pylist()


def test_values_are_trimmed_of_whitespace_at_both_ends_and_blank_ones_are_missing():
    # rules._trimmed_or_null skips the trim when no value can need it (judged on first and last bytes): random values
    # of whitespace (ASCII and not), letters whose UTF-8 ends like a whitespace's (À), nulls, sliced arrays, against
    # Python's own strip.
    import random

    rng = random.Random(17)
    pool = ["a", "b", " ", "\t", "\u00a0", "\u3000", "\u2007", "\u202f", "À", "é", "€", "x y", "\r", "\n", "\x0b"]
    for _ in range(2000):
        values = [None if rng.random() < 0.1 else "".join(rng.choice(pool) for _ in range(rng.randint(0, 4)))
                  for _ in range(rng.randint(0, 8))]  # fmt: skip
        arrays = (
            pa.array(values, pa.string()),
            pa.array(values, pa.string()).slice(1),
            pa.array(values, pa.large_string()),
        )
        for array in arrays:
            expected = [None if v is None or not v.strip(rules.WHITESPACE_CHARS) else v.strip(rules.WHITESPACE_CHARS)
                        for v in array.to_pylist()]  # fmt: skip
            assert rules._trimmed_or_null(array).to_pylist() == expected


def test_an_amount_already_written_as_its_output_text_is_kept_and_any_other_is_rewritten():
    # rules.amount_text keeps amounts already in decimal_text's form and rewrites the others: the same text as
    # decimal_text of the values for random amounts; and by hand, the forms that must be rewritten.
    import random

    trimmed = pa.array(["12.5", "-0.5", "00.5", "1.50", "+1.5", "7", ".5", "1.0000000001", "abc", None], pa.string())
    amounts = rules.parse_amounts(trimmed)
    assert rules.amount_text(trimmed, amounts).to_pylist() == [
        "12.5", "-0.5", "0.5", "1.5", "1.5", "7.0", "0.5", "1.0", None, None,
    ]  # fmt: skip
    rng = random.Random(23)
    alphabet = "0123456789" * 3 + ".+-,$ "
    for _ in range(500):
        values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(20)] + [None]
        trimmed = rules._trimmed_or_null(pa.array(values, pa.string()))
        a = rules.parse_amounts(trimmed)
        assert rules.amount_text(trimmed, a).to_pylist() == rules.decimal_text(a.units, a.nanos, a.valid).to_pylist()


def test_running_total_key_is_one_int64_in_running_total_order_when_it_fits():
    # rules.running_total_key: sorting by it gives the order written out in Python; None when an id needs its text
    # ("007", "x") or when ids and line numbers span too much for 63 bits together.
    import random

    import numpy as np

    rng = random.Random(31)
    for _ in range(200):
        n = rng.randint(1, 50)
        status = [rng.choice(["paid", "Paid", "é", None]) for _ in range(n)]
        date = [rng.choice([None, -2, 0, 5, 18000]) for _ in range(n)]
        row_id = [rng.choice([None, str(rng.randint(-9, 9))]) for _ in range(n)]
        number = [int(v) if v is not None else None for v in row_id]
        line = rng.sample(range(1, 10**6), n)
        columns = (
            pa.array(status, pa.string()),
            pa.array(date, pa.date32()),
            pa.array(number, pa.int64()),
            pa.array(row_id, pa.string()),
            pa.array(line, pa.int64()),
        )
        key = rules.running_total_key(*columns)
        reference = [_reference_order_key(status[i], date[i], number[i], row_id[i], line[i]) for i in range(n)]
        assert np.argsort(key).tolist() == sorted(range(n), key=lambda i: reference[i])
    text = (
        pa.array(["a"] * 2),
        pa.array([1, 1], pa.date32()),
        pa.array([7, 7]),
        pa.array(["007", "7"]),
        pa.array([1, 2]),
    )
    assert rules.running_total_key(*text) is None
    # the key's fields must not overflow into each other: lines far from 0 in a narrow span (their offset from the
    # first line is what is packed), and spans that need exactly 63 bits (one key) or 64 (none: the sign bit)
    for ids_span, lines in ((3, [10**6 + 7, 10**6, 10**6 + 3]), (2**40, [1, 2**22, 5]), (2**40, [1, 2**23, 5])):
        numbers = pa.array([ids_span, 0, 1], pa.int64())
        columns = (pa.array(["a"] * 3), pa.array([1] * 3, pa.date32()), numbers, pc_cast_text(numbers))
        key = rules.running_total_key(*columns, pa.array(lines))
        if lines[1] == 2**23:
            assert key is None  # 41 + 23 bits
        else:
            assert np.argsort(key).tolist() == [1, 2, 0]  # by id number: 0, 1, then the largest
    wide_ids = pa.array([0, 2**40], pa.int64())
    wide = (pa.array(["a", "a"]), pa.array([1, 1], pa.date32()), wide_ids, pc_cast_text(wide_ids), pa.array([1, 2**30]))
    assert rules.running_total_key(*wide) is None


def pc_cast_text(values):
    import pyarrow.compute as pc

    return pc.cast(values, pa.string())
