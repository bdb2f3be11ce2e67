"""Compact list rows: unfold's utility classes named once in a stylesheet, not on every cell.

Unfold writes some thirty Tailwind classes on every cell of a list (`ROW_CLASSES`, `CHECKBOX_CLASSES`,
the checkbox's own). On the staff queue that was two thirds of a 330 KB page (DESIGN.md "Budgets":
≤ 150 KB). Here each such list is one short class (`SHORT`), and `stylesheet()` writes for it the
very rules unfold's compiled `styles.css` has for its utilities — same declarations, same at-rules,
same order, in the same cascade layer — so a compact cell looks exactly like unfold's.

The stylesheet is generated, not written by hand: `python manage.py compact_css` writes it to
`core/static/core/compact_list.css`, and a test fails when it no longer matches the installed unfold.
"""
from __future__ import annotations

import re
from pathlib import Path

from django import template
from django.utils.html import conditional_escape, escape, format_html
from django.utils.safestring import SafeData, mark_safe
from unfold.templatetags import unfold_list
from unfold.widgets import CHECKBOX_CLASSES as INPUT_CLASSES

STYLESHEET = Path(__file__).resolve().parent.parent / "core" / "static" / "core" / "compact_list.css"

# unfold's class lists kept apart from the classes its JavaScript looks for
_CELL = list(unfold_list.ROW_CLASSES)
_CHECKBOX_CELL = [c for c in unfold_list.CHECKBOX_CLASSES if c != "action-checkbox"]
_ROW = ("block border border-base-200 mb-3 relative rounded-default lg:table-row lg:border-none lg:mb-0 "
        "lg:rounded-none dark:border-base-800").split()

SHORT = {           # short class -> the utilities it stands for
    "cq-c": _CELL,
    "cq-k": _CHECKBOX_CELL,
    "cq-i": list(INPUT_CLASSES),
    "cq-r": _ROW,
}

# as written by format_html (unfold's cells) and as escaped by a widget's template (its checkbox)
_REPLACE = [(form, short) for short, classes in SHORT.items()
            for form in dict.fromkeys((" ".join(classes), escape(" ".join(classes))))]
_BLANK_LINES = re.compile(r"\s*\n\s*")


register = template.Library()


@register.filter
def compact_cell(html) -> str:
    """One rendered cell with each of unfold's class lists as its short class, blank lines gone."""
    if not isinstance(html, SafeData):
        return conditional_escape(html)
    html = str(html)
    for long, short in _REPLACE:
        html = html.replace(long, short)
    if "<textarea" not in html and "<pre" not in html:      # where blank lines are content
        html = _BLANK_LINES.sub("\n", html)
    return mark_safe(html)     # unfold's safe HTML, only its class lists changed


def checkbox_html(value) -> str:
    """The row's selection checkbox as unfold draws it (without a template render per row), its classes as one."""
    return format_html('<input type="checkbox" name="_selected_action" value="{}" class="cq-i action-select" '
                       'aria-label="Select record">', value)


_LABEL_COLOURS = {
    "info": "bg-blue-100 text-blue-700 dark:bg-blue-500/20 dark:text-blue-400",
    "danger": "bg-red-100 text-red-700 dark:bg-red-500/20 dark:text-red-400",
    "warning": "bg-orange-100 text-orange-700 dark:bg-orange-500/20 dark:text-orange-400",
    "success": "bg-green-100 text-green-700 dark:bg-green-500/20 dark:text-green-400",
    "primary": "bg-primary-100 text-primary-700 dark:bg-primary-500/20 dark:text-primary-400",
}
_LABEL_PLAIN = "bg-base-500/8 text-base-700 dark:bg-base-500/20 dark:text-base-200"


def label(text, variant: str | None = "") -> str:
    """unfold's label (helpers/label.html, default size) without a template render per row."""
    return format_html('<span class="inline-block font-semibold rounded-default text-[11px] uppercase '
                       'whitespace-nowrap h-6 leading-6 px-2 {}">{}</span>',
                       _LABEL_COLOURS.get(variant or "", _LABEL_PLAIN), text)


def header(title, subtitle="") -> str:
    """unfold's two-line list cell (`@display(header=True)`: helpers/display_header.html, no picture)."""
    return format_html('<span class="flex gap-4 items-center"><span class="flex flex-col text-right lg:text-left">'
                       '<strong class="block font-normal">{}</strong>{}</span></span>', title,
                       format_html('<p class="text-base-500">{}</p>', subtitle) if subtitle else "")


# --- the stylesheet ---------------------------------------------------------------------------------

def _unfold_css() -> str:
    import unfold
    return (Path(unfold.__file__).parent / "static" / "unfold" / "css" / "styles.css").read_text()


def _rules(css: str):
    """(at-rule preludes, selector, declarations) for every style rule, in document order."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    stack, i, n, start = [], 0, len(css), 0
    while i < n:
        ch = css[i]
        if ch == "{":
            prelude = css[start:i].strip()
            if prelude.startswith("@"):
                stack.append(prelude)
                start = i + 1
            else:
                end = css.index("}", i)
                yield tuple(stack), prelude, css[i + 1:end]
                i = start = end + 1
                continue
        elif ch == "}":
            if stack:
                stack.pop()
            start = i + 1
        elif ch == ";":
            start = i + 1           # a statement at-rule (@layer a, b;) or an at-rule block's descriptor
        i += 1


def _split_selectors(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in selector:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


_HEX = re.compile(r"[0-9a-fA-F]{1,6} ?")


def _leading_class(selector: str) -> tuple[str, int] | None:
    """The class a selector starts with, unescaped, and where it ends; None if it starts otherwise."""
    if not selector.startswith("."):
        return None
    name, i = [], 1
    while i < len(selector):
        ch = selector[i]
        if ch == "\\":
            hexa = _HEX.match(selector, i + 1)
            if hexa and (hexa.group().endswith(" ") or not selector[i + 1].isalpha()):
                name.append(chr(int(hexa.group().strip(), 16)))
                i = hexa.end()
            else:
                name.append(selector[i + 1])
                i += 2
            continue
        if ch.isalnum() or ch in "-_" or ord(ch) > 127:
            name.append(ch)
            i += 1
            continue
        break
    return "".join(name), i


def stylesheet(css: str | None = None) -> str:
    """The compact classes' rules, taken from unfold's styles.css."""
    wanted = {}
    for short, classes in SHORT.items():
        for utility in classes:
            wanted.setdefault(utility, []).append(short)
    out, context = [], None
    source = css if css is not None else _unfold_css()
    for stack, selector, declarations in _rules(source):
        rewritten = []
        for one in _split_selectors(selector):
            found = _leading_class(one.strip())
            if found and found[0] in wanted:
                rewritten += [f".{short}{one.strip()[found[1]:]}" for short in wanted[found[0]]]
        if not rewritten:
            continue
        if stack != context:
            if context is not None:
                out.append("}" * len(context))
            out.append("".join(f"{prelude}{{" for prelude in stack))
            context = stack
        out.append(f"{','.join(rewritten)}{{{declarations}}}")
    if context:
        out.append("}" * len(context))
    # unfold's layers in unfold's order: this file is linked before styles.css, and the first file to
    # name a layer places it (a lone "@layer utilities" here would put the utilities under the base
    # styles, and unfold's reset would undo every utility of every page)
    layers = list(dict.fromkeys(name.strip() for name in re.findall(r"@layer\s+([\w\s,.-]+?)\s*[{;]", source)
                                for name in name.split(",")))
    header = ("/* Generated by `python manage.py compact_css` from unfold's styles.css "
              "(clearance_admin/compact.py): do not edit. */\n")
    return header + (f"@layer {','.join(layers)};\n" if layers else "") + "\n".join(out) + "\n"
