"""Compact list rows (clearance_admin/compact.py): unfold's class lists named once in a generated
stylesheet, the rows drawn without a template per cell — and still unfold's rows."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import unfold
from django.core.management import call_command
from django.urls import reverse
from unfold.templatetags import unfold_list

from clearance_admin import compact
from tests.clearance_admin.test_staff_queue_scale import cohort

QUEUE = reverse("staff:core_clearanceapproval_changelist")
UNFOLD_TEMPLATE = Path(unfold.__file__).parent / "templates" / "admin" / "change_list_results.html"
OURS = Path(compact.__file__).parent / "templates" / "admin" / "change_list_results.html"


def test_the_stylesheet_is_the_one_the_installed_unfold_makes():
    call_command("compact_css", "--check")      # CommandError (a failure here) when unfold changed


def test_every_utility_a_short_class_stands_for_has_its_rules():
    css = compact.stylesheet()
    for short, utilities in compact.SHORT.items():
        rules = re.findall(rf"\.{short}[^{{]*\{{[^}}]*\}}", css)
        assert len(rules) >= len(utilities) - 2, short      # a few utilities share one rule with another
    # the variants come with their contexts: lg: in its media query, dark: under .dark, before: on ::before
    large = css[css.index("@layer utilities{@media (min-width:64rem){"):]
    assert ".cq-c,.cq-k{display:table-cell}" in large[:large.index("}}")]
    assert re.search(r"\.cq-c:where\(\.dark,\.dark \*\)[^{]*\{border-color:var\(--color-base-800\)\}", css)
    assert ".cq-c:before,.cq-k:before{--tw-content:attr(data-label);content:var(--tw-content)}" in css


def test_the_stylesheet_rewrites_unfolds_rules_whatever_their_escapes_and_contexts():
    source = (r"@layer theme{:root{--x:1}}@layer components;"
              r"@layer utilities{.h-\[45px\]{height:45px}.py-1\.5{padding:1px}.other{color:red}"
              r".lg\:before\:hidden,.x{display:none}"
              r"@media (min-width:64rem){.lg\:table-cell{display:table-cell}}"
              r".dark\:border-base-800:where(.dark,.dark *){border-color:blue}"
              r".\31 0x{width:10px}}")
    saved = compact.SHORT
    try:
        compact.SHORT = {"s": ["h-[45px]", "py-1.5", "lg:before:hidden", "lg:table-cell", "dark:border-base-800",
                               "10x"]}
        css = compact.stylesheet(source)
    finally:
        compact.SHORT = saved
    _, order, body = css.split("\n", 2)
    assert order == "@layer theme,components,utilities;"      # unfold's order, whoever links first
    assert body == ("@layer utilities{\n.s{height:45px}\n.s{padding:1px}\n.s{display:none}\n}\n"
                    "@layer utilities{@media (min-width:64rem){\n.s{display:table-cell}\n}}\n"
                    "@layer utilities{\n.s:where(.dark,.dark *){border-color:blue}\n.s{width:10px}\n}\n")


def test_a_cell_keeps_its_field_class_and_loses_the_list():
    cell = unfold_list.format_html('<td class="field-name {}" data-label="Name">\n\n   Ada\n </td>',
                                   " ".join(unfold_list.ROW_CLASSES))
    assert compact.compact_cell(cell) == '<td class="field-name cq-c" data-label="Name">\nAda\n</td>'


def test_a_cell_that_is_not_safe_html_is_escaped_and_a_textarea_keeps_its_lines():
    assert compact.compact_cell("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
    area = unfold_list.format_html("<td><textarea>{}</textarea></td>", "a\n\n  b")
    assert "a\n\n  b" in compact.compact_cell(area)


def test_our_results_template_is_unfolds_with_only_the_compact_changes():
    def flat(text):
        text = re.sub(r"\{#.*?#\}", "", text)
        return re.sub(r"\s+", "", text)
    theirs = flat(UNFOLD_TEMPLATE.read_text())
    for old, new in [
        ("{%loadadmin_urlsi18nunfold%}", "{%loadadmin_urlsi18nunfoldcompact_list%}"),
        ('<trclass="data-rowblockborderborder-base-200mb-3relativerounded-defaultlg:table-rowlg:border-none'
         'lg:mb-0lg:rounded-nonedark:border-base-800">', '<trclass="data-rowcq-r">'),
        ("{%foriteminresult%}{{item}}{%endfor%}", "{%foriteminresult%}{{item|compact_cell}}{%endfor%}"),
        ("{%include'unfold/helpers/actions_row.html'withactions=actions_rowinstance_pk=result.instance.pk%}",
         "{%ifactions_row%}{%include'unfold/helpers/actions_row.html'withactions=actions_row"
         "instance_pk=result.instance.pk%}{%endif%}"),
    ]:
        assert old in theirs, old          # unfold changed the template: take its new one and redo these
        theirs = theirs.replace(old, new)
    assert flat(OURS.read_text()) == theirs


@pytest.mark.django_db
def test_the_queue_rows_are_compact_and_are_unfolds_rows(client, lib_reviewer, cycle, registry_user):
    cohort(30, cycle, registry_user)
    client.force_login(lib_reviewer)
    response = client.get(QUEUE)
    html = response.content.decode()
    assert response.status_code == 200
    assert "core/compact_list.css" in html
    assert html.count('class="action-checkbox cq-k"') == 30 and html.count("cq-i action-select") == 30
    assert " ".join(unfold_list.ROW_CLASSES) not in html
    # each cell on the page is unfold's cell of that row with its class list as the short class
    for cells in unfold_list.results(response.context["cl"]):
        for cell in list(cells)[1:]:                # the checkbox's cell carries the moment it was drawn
            assert str(compact.compact_cell(cell)) in html
    table = html[html.index('<table id="result_list"'):html.index("</table>")]
    assert len(table.encode()) / 30 < 2500      # a row was 5.6 KB before: fifty made a 330 KB page


@pytest.mark.django_db
def test_the_header_and_label_helpers_draw_what_unfolds_templates_draw():
    from django.template.loader import render_to_string
    from unfold.utils import display_for_header

    def flat(html):
        return re.sub(r"\s+", " ", str(html)).replace("> ", ">").replace(" <", "<").replace(" >", ">").replace(' "', '"').strip()

    theirs = flat(render_to_string("unfold/helpers/label.html", {"text": "Pending", "variant": "warning"}))
    assert flat(compact.label("Pending", "warning")) == theirs
    assert flat(compact.label("x", None)) == flat(render_to_string("unfold/helpers/label.html", {"text": "x"}))
    # unfold's header template closes its outer span with </div>: ours is the same element, well closed
    theirs = flat(display_for_header(("SCE/1", "Ada"), "-")).replace("</span></div>", "</span></span>")
    assert flat(compact.header("SCE/1", "Ada")) == theirs
