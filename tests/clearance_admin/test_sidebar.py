"""The sidebar's badges (clearance_admin/templates/unfold/helpers/app_list_badge.html): a badge whose
callback has nothing to say draws nothing — unfold alone draws an empty coloured box."""
from django.template.loader import render_to_string
from django.utils.functional import lazy


def _badge(item) -> str:
    return " ".join(render_to_string("unfold/helpers/app_list_badge.html", {"item": item}).split())


def test_a_badge_callback_answering_nothing_draws_no_box():
    assert _badge({"badge": "clearance_admin.staff.queue_badge", "badge_callback": lazy(lambda: "", str)()}) == ""


def test_a_badge_with_something_to_say_and_a_plain_badge_are_drawn():
    assert "3 new</span>" in _badge({"badge": "x", "badge_callback": lazy(lambda: "3 new", str)()}).replace("> ", ">").replace(" <", "<")
    assert "7</span>" in _badge({"badge": "7"}).replace(" <", "<")
