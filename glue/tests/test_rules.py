"""The rules, one test per rule: read as the specification of each (CONTRACT.md "Rules" states them in words).

Every test runs rules.process, the one implementation, on raw values as the reader gives them (null for an empty
field). Amounts and running totals come back as Decimal (their text parsed), dates as date."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

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
    dates = ["29-02-2024", "29-02-2025", "29-02-1900", "29-02-2000", "29-02-2100", "28-02-1900"]
    out = run_rules([row(id_=str(i), date=d) for i, d in enumerate(dates)])
    assert [r["date"] for r in out] == [
        dt.date(2024, 2, 29),
        None,
        None,
        dt.date(2000, 2, 29),
        None,
        dt.date(1900, 2, 28),
    ]


def test_year_zero_is_not_a_date():
    out = run_rules([row(date="01-01-0000"), row(id_="2", date="01-01-0001")])
    assert [r["date"] for r in out] == [None, dt.date(1, 1, 1)]


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
    assert [r["line_number"] for r in run_rules(rows)] == [2, 3, 4, 5]


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


def test_running_total_stays_exact_past_what_int64_holds():
    # 5,000 of the largest amount: past 2**62 whole units the sums go on in Python integers, still exact.
    big = "999999999999999.999999999"
    out = run_rules([row(id_=str(i), amount=big) for i in range(5000)])
    totals = [r["running_total_by_status"] for r in out]
    assert totals[0] == Decimal(big)
    assert totals[-1] == Decimal(big) * 5000
    assert totals[4610] == Decimal(big) * 4611


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


def test_uploads_processed_together_must_account_for_every_row():
    import pyarrow as pa

    columns = {c: pa.array(["x"], pa.string()) for c in rules.REQUIRED_COLUMNS}
    with pytest.raises(ValueError, match="uploads hold 2 rows, 1 given"):
        rules.process_uploads(columns, pa.array([2], pa.int64()), [("a", 1), ("b", 1)], PROCESSING_DATE)
