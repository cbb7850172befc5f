"""One test per cleaning / enrichment rule, on both engines' rules (the pure transform and arrow_rules)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from support import PROCESSING_DATE, row, rows_df, run_transform

import transform


def test_name_is_trimmed_collapsed_and_proper_cased(rules):
    names = ["  jOHN   doe ", "\u00a0élodie\tdupont\u00a0", "o'brien-smith", "   "]
    out = rules([row(id_=str(i), name=n) for i, n in enumerate(names)])
    assert [r["name"] for r in out] == ["John Doe", "Élodie Dupont", "O'brien-smith", None]
    assert out[3]["data_quality_issues"] == "missing_name"


def test_email_is_kept_trimmed_and_flagged_by_the_documented_pattern(rules):
    emails = [" ann@example.com ", "ann@example", "a.b+c@sub.example.org", "no at sign", None]
    out = rules([row(id_=str(i), email=e) for i, e in enumerate(emails)])
    assert [(r["email"], r["email_valid"], r["data_quality_issues"]) for r in out] == [
        ("ann@example.com", True, ""),
        ("ann@example", False, "invalid_email"),
        ("a.b+c@sub.example.org", True, ""),
        ("no at sign", False, "invalid_email"),
        (None, False, "missing_email"),
    ]


def test_dates_accept_both_formats_and_flag_bad_ones(rules):
    dates = ["01-04-2025", "2025-04-02", "31-02-2025", "2025-13-01", "1/4/2025", "29-02-2024", ""]
    out = rules([row(id_=str(i), date=d) for i, d in enumerate(dates)])
    assert [(r["date"], r["data_quality_issues"]) for r in out] == [
        (dt.date(2025, 4, 1), ""),
        (dt.date(2025, 4, 2), ""),
        (None, "invalid_date"),
        (None, "invalid_date"),
        (None, "invalid_date"),
        (dt.date(2024, 2, 29), ""),
        (None, "missing_date"),
    ]


def test_date_formats_are_configurable(rules):
    out = rules([row(date="04/01/2025"), row(id_="2", date="01-04-2025")], date_formats=["MM/dd/yyyy"])
    assert [r["date"] for r in out] == [dt.date(2025, 4, 1), None]


def test_bad_date_format_pattern_is_refused():
    with pytest.raises(ValueError, match="needs exactly one year"):
        transform.date_format_regex("dd-MM")


def test_amount_strips_currency_keeps_sign_and_flags_bad_values(rules):
    amounts = ["$1,234.50", "-20", "", "abc", "€ 75", "-$5.5", "1.234,50", "+.5", "12,34"]
    out = rules([row(id_=str(i), amount=a) for i, a in enumerate(amounts)])
    assert [(r["amount"], r["amount_category"], r["data_quality_issues"]) for r in out] == [
        (1234.5, "high", ""),
        (-20.0, "low", ""),
        (None, None, "missing_amount"),
        (None, None, "invalid_amount"),
        (75.0, "low", ""),
        (-5.5, "low", ""),
        (None, None, "invalid_amount"),
        (0.5, "low", ""),
        (None, None, "invalid_amount"),
    ]


def test_amount_category_boundaries(rules):
    amounts = ["99.99", "100", "199.99", "200", "0"]
    out = rules([row(id_=str(i), amount=a) for i, a in enumerate(amounts)])
    assert [r["amount_category"] for r in out] == ["low", "medium", "medium", "high", "low"]


def test_status_is_trimmed_and_lower_cased(rules):
    out = rules([row(status="  ACTIVE "), row(id_="2", status="Pending"), row(id_="3", status="")])
    assert [(r["status"], r["data_quality_issues"]) for r in out] == [
        ("active", ""),
        ("pending", ""),
        (None, "missing_status"),
    ]


def test_running_total_per_status_ordered_by_date_then_numeric_id(rules):
    rows = [
        row(id_="10", date="02-04-2025", amount="1", status="active"),
        row(id_="2", date="02-04-2025", amount="10", status="active"),
        row(id_="3", date="01-04-2025", amount="100", status="active"),
        row(id_="4", date="01-04-2025", amount="1000", status="pending"),
        row(id_="5", date="03-04-2025", amount="", status="active"),
    ]
    out = rules(rows)
    # active order: id 3 (1 Apr), id 2, id 10 (2 Apr, 2 < 10 numerically), id 5 (no amount: total unchanged)
    assert [(r["id"], r["running_total_by_status"]) for r in out] == [
        ("10", 111.0),
        ("2", 110.0),
        ("3", 100.0),
        ("4", 1000.0),
        ("5", 111.0),
    ]


def test_running_total_has_no_float_noise(rules):
    out = rules([row(id_="1", amount="0.1"), row(id_="2", amount="0.2", date="02-04-2025")])
    assert [r["running_total_by_status"] for r in out] == [Decimal("0.1"), Decimal("0.3")]


def test_quality_issues_are_all_listed_in_a_stable_order(rules):
    out = rules([(None, "", "bad", "31-02-2025", "abc", None), row()])
    assert out[0]["data_quality_issues"] == (
        "missing_id;missing_name;invalid_email;invalid_date;invalid_amount;missing_status"
    )
    assert out[1]["data_quality_issues"] == ""


def test_duplicate_id_in_file_is_flagged_on_every_row_with_that_id(rules):
    out = rules([row(id_="7", name="A B"), row(id_="7", name="C D"), row(id_="8")])
    assert [(r["id"], r["data_quality_issues"]) for r in out] == [
        ("7", "duplicate_id"),
        ("7", "duplicate_id"),
        ("8", ""),
    ]


def test_exact_duplicates_are_removed_and_the_first_line_kept(rules):
    out = rules([row(), row(id_="2"), row(), row()])
    assert [(r["id"], r["line_number"], r["data_quality_issues"]) for r in out] == [("1", 2, ""), ("2", 3, "")]


def test_exact_duplicates_are_counted_per_id(spark):
    summary = transform.duplicate_summary(transform.clean(rows_df(spark, [row(), row(id_="2"), row(), row()])))
    assert sorted((r["id"], r["rows"], r["duplicates"]) for r in summary.collect()) == [("1", 1, 2), ("2", 1, 0)]


def test_rows_differing_only_in_spacing_are_not_exact_duplicates(rules):
    out = rules([row(name="Ann Lee"), row(name="Ann  Lee")])
    assert [(r["name"], r["line_number"], r["data_quality_issues"]) for r in out] == [
        ("Ann Lee", 2, "duplicate_id"),
        ("Ann Lee", 3, "duplicate_id"),
    ]


def test_processing_date_is_one_value_and_source_file_is_the_key(rules):
    out = rules([row(), row(id_="2")], source_file="input/sales/april.csv")
    assert {(r["processing_date"], r["source_file"]) for r in out} == {(PROCESSING_DATE, "input/sales/april.csv")}


def test_output_columns_are_in_the_seeds_order(spark):
    out = transform.output_rows(transform.transform(rows_df(spark, [row()]), PROCESSING_DATE))
    assert out.columns == [
        "id", "name", "email", "email_valid", "date", "amount", "amount_category", "status",
        "running_total_by_status", "data_quality_issues", "processing_date", "source_file",
    ]  # fmt: skip


def test_rules_give_the_same_answer_in_ansi_mode(spark):
    rows = [row(id_="x1", date="not a date", amount="abc"), row(id_="2", date="31-02-2025")]
    rows.append(row(id_="3", date="1/4/2025"))
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try:
        out = run_transform(spark, rows, date_formats=["dd-MM-yyyy", "d/M/yyyy"])
    finally:
        spark.conf.unset("spark.sql.ansi.enabled")
    assert [(r["id"], r["date"], r["amount"], r["data_quality_issues"]) for r in out] == [
        ("x1", None, None, "invalid_date;invalid_amount"),
        ("2", None, 10.0, "invalid_date"),
        ("3", dt.date(2025, 4, 1), 10.0, ""),
    ]


def test_running_total_ties_on_date_and_id_are_summed_in_line_order(rules):
    # Same status, date and id, different rows: the line number decides (the earlier line is summed first).
    rows = [row(name="B", amount="1"), row(name="A", amount="10"), row(name="C", amount="100")]
    out = rules(rows)
    assert [(r["name"], r["running_total_by_status"]) for r in out] == [
        ("B", Decimal(1)),
        ("A", Decimal(11)),
        ("C", Decimal(111)),
    ]


def test_running_total_is_an_exact_decimal_rounded_half_up_to_9_places(rules):
    amounts = ["0.0000000005", "0.1234567894", "1000000000000.01"]
    out = rules([row(id_=str(i), amount=a, date=f"0{i + 1}-04-2025") for i, a in enumerate(amounts)])
    assert [r["running_total_by_status"] for r in out] == [
        Decimal("0.000000001"),
        Decimal("0.123456790"),
        Decimal("1000000000000.133456790"),
    ]


def test_amounts_of_more_than_15_integer_digits_are_invalid(rules):
    amounts = ["999999999999999", "999,999,999,999,999", "1000000000000000", "1,000,000,000,000,000"]
    out = rules([row(id_=str(i), amount=a) for i, a in enumerate(amounts)])
    assert [(r["amount"], r["data_quality_issues"]) for r in out] == [
        (999999999999999.0, ""),
        (999999999999999.0, ""),
        (None, "invalid_amount"),
        (None, "invalid_amount"),
    ]


def test_patterns_end_at_the_end_of_the_value_not_before_a_line_separator(rules):
    # Java's $ also matches before a final line terminator such as U+2028; the rules use \z on both engines.
    out = rules([row(email="ann@example.com\u2028", amount="5\u2028", date="01-04-2025\u2028")])
    assert out[0]["data_quality_issues"] == "invalid_email;invalid_date;invalid_amount"


def test_names_are_cased_by_javas_rules_on_both_engines(rules):
    names = ["ΟΔΥΣΣΕΥΣ", "ßtraße", "ǆuro", "İNCE", "გიორგი", "𐐨𐐨", "mARÍA josé"]
    out = rules([row(id_=str(i), name=n) for i, n in enumerate(names)])
    assert [r["name"] for r in out] == ["Οδυσσευς", "ßtraße", "ǅuro", "I\u0307nce", "გიორგი", "𐐨𐐨", "María José"]


def test_rows_without_status_have_a_running_total_of_their_own(rules):
    rows = [row(id_="1", status="", amount="1"), row(id_="2", status="a", amount="10"), row(id_="3", status=" ")]
    rows.append(row(id_="4", status=None, amount="100", date="02-04-2025"))
    out = rules(rows)
    assert [(r["id"], r["status"], r["running_total_by_status"]) for r in out] == [
        ("1", None, Decimal(1)),
        ("2", "a", Decimal(10)),
        ("3", None, Decimal(11)),
        ("4", None, Decimal(111)),
    ]


def test_exact_duplicates_need_the_very_same_values(rules):
    rows = [row(name="a\x1fb", email="c"), row(name="a", email="b\x1fc"), row(status="\x00"), row(status=None)]
    out = rules(rows)
    assert [r["line_number"] for r in out] == [2, 3, 4, 5]


def test_a_nul_value_and_a_missing_one_are_not_counted_as_copies(spark):
    rows = [row(status="\x00"), row(status=None), row(id_="2", name="\x00"), row(id_="2", name=None)]
    summary = transform.duplicate_summary(transform.clean(rows_df(spark, rows)))
    assert sorted((r["id"], r["rows"], r["duplicates"]) for r in summary.collect()) == [("1", 2, 0), ("2", 2, 0)]
