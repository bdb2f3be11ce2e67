from decimal import Decimal

from django.template import Context, Template

from core.money import kes


def test_kes_reads_one_way():
    assert kes(Decimal("2500")) == "KES 2,500.00"
    assert kes(1234567.891) == "KES 1,234,567.89"
    assert kes(Decimal("-1200")) == "-KES 1,200.00"
    assert kes(0) == "KES 0.00"


def test_kes_without_an_amount_is_what_the_caller_says():
    assert kes(None) == ""
    assert kes(None, "no amount") == "no amount"
    assert kes("abc", "—") == "—"
    assert kes(Decimal("NaN"), "—") == "—"


def test_kes_filter_in_templates():
    out = Template("{% load money %}{{ a|kes }}|{{ b|kes:'none' }}").render(Context({"a": Decimal("2500"), "b": None}))
    assert out == "KES 2,500.00|none"
