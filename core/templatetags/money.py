"""`{% load money %}{{ amount|kes }}`: core.money.kes in templates (one format on every page)."""
from django import template

from core.money import kes as _kes

register = template.Library()


@register.filter
def kes(amount, blank: str = ""):
    return _kes(amount, blank)
