"""The forms and the page of one decision in /staff/: an item's Approve / Reject / Waive / Re-open
and a hold's Release / Waive. The admin views parse with these and call one service each."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from unfold.widgets import UnfoldAdminFileFieldWidget, UnfoldAdminTextareaWidget

from core.files import validate_evidence
from core.models import NOTES_MAX_LENGTH, REASON_MAX_LENGTH, ClearanceApproval

A = ClearanceApproval.Status

# decision: (button, past tense)
DECISIONS = {"approve": ("Approve", "approved"), "reject": ("Reject", "rejected"), "waive": ("Waive", "waived"),
             "reopen": ("Re-open", "re-opened")}
# what each status can become (the services refuse the rest, with the reason)
DECISIONS_BY_STATUS = {
    A.PENDING: ("approve", "reject", "waive"),
    A.REJECTED: ("reopen", "reject", "waive"),
    A.APPROVED: ("reject",),
    A.WAIVED: (),
}
NEEDS_REASON = ("reject", "waive")
TAKES_EVIDENCE = ("approve", "reject")
REASON_REQUIRED = "Write the reason; the student reads it."


def _note_field(label="Internal note", help_text="For the office, not the student; kept with the decision in the "
                                                 "history below."):
    return forms.CharField(label=label, required=False, max_length=NOTES_MAX_LENGTH, help_text=help_text,
                           widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))


def _evidence_field():
    return forms.FileField(label="Evidence", required=False, widget=UnfoldAdminFileFieldWidget,
                           help_text="PDF, PNG or JPEG, at most 5 MB. Kept with an approval or a rejection.")


class ItemForm(forms.ModelForm):
    """The item page's form: what goes with a decision (an internal note, evidence) and the item as
    the clerk saw it (`seen`). Its buttons post it to the decision views; it never saves itself.
    The note starts empty: earlier notes are in the history table."""

    seen = forms.CharField(widget=forms.HiddenInput, required=False)
    notes = _note_field()
    evidence_file = _evidence_field()

    class Meta:
        model = ClearanceApproval
        fields = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["notes"] = ""
        self.initial["seen"] = self.instance.state_token


class DecideForm(forms.Form):
    """One decision on one item: the reason (reject, waive), a note, evidence (approve, reject) and
    the item's state as the clerk saw it."""

    seen = forms.CharField(widget=forms.HiddenInput, required=False)
    reason = forms.CharField(
        label="Reason", max_length=REASON_MAX_LENGTH, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text=f"The student reads this reason. Up to {REASON_MAX_LENGTH:,} characters.",
        error_messages={"required": REASON_REQUIRED})
    notes = _note_field()
    evidence_file = _evidence_field()

    def __init__(self, *args, decision: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.decision = decision
        if decision not in NEEDS_REASON:
            del self.fields["reason"]
        if decision not in TAKES_EVIDENCE:
            del self.fields["evidence_file"]
        if decision == "reopen":  # the re-open notification carries the note to the student
            self.fields["notes"] = _note_field("Note", "Optional; the student reads it with the re-opening.")

    def clean_reason(self):
        reason = (self.cleaned_data.get("reason") or "").strip()
        if not reason:
            raise ValidationError(REASON_REQUIRED, code="required")
        return reason

    def clean_notes(self):
        return (self.cleaned_data.get("notes") or "").strip()

    def clean_evidence_file(self):
        upload = self.cleaned_data.get("evidence_file")
        if upload:
            validate_evidence(upload)
        return upload


class HoldEndForm(forms.Form):
    """Why a hold is released (optional, kept on the hold) or waived (required; the student reads it)."""

    reason = forms.CharField(label="Reason", max_length=REASON_MAX_LENGTH,
                             widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}))

    def __init__(self, *args, verb: str, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["reason"]
        if verb == "release":
            field.required = False
            field.help_text = "Optional: what settled it (e.g. “Books returned 3 Dec”). Kept on the hold."
        else:
            field.help_text = "Required: why the office lets it go. The student reads it."
            field.error_messages["required"] = "Write the reason for waiving the hold."

    def clean_reason(self):
        reason = (self.cleaned_data.get("reason") or "").strip()
        if not reason and self.fields["reason"].required:
            raise ValidationError(self.fields["reason"].error_messages["required"], code="required")
        return reason


def decision_page(modeladmin, request, *, title, summary, form, buttons, cancel_url, reasons=(), error_link=None):
    """The unfold-styled page of one decision: what it is about (label, value rows), the form, the
    office's recent reasons to pick from, the buttons (label, name, value, variant)."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": modeladmin.model._meta,
        "summary": summary,
        "form": form,
        "buttons": buttons,
        "cancel_url": cancel_url,
        "reasons": list(reasons),
        "error_link": error_link,
        "form_url": request.get_full_path(),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "staff/decision.html", context)
