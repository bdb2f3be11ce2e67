"""M-PESA statement reconciliation on /finance/ through the HTTP client: upload → the saved
result's page (the matching rule, ambiguous lines with their candidates, "Record and verify"),
the list of past reconciliations, the statement file and the result as xlsx/csv, "Release FIN
hold" on a payment; forged and replayed posts, other roles, and the queries per page."""
from __future__ import annotations

import csv
import datetime
import io
import re
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from core.models import ClearanceApproval, Hold, Payment, ReconciliationLine, StatementReconciliation
from core.services.balances import balances_import_apply, balances_import_preview
from core.services.reconcile import payments_reconcile_statement
from tests import factories
from tests.conftest import approval_of, messages_of
from tests.factories import student_with_reg as make_student

P = "/finance/core/payment"
R = "/finance/core/statementreconciliation"
STATEMENT = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "mpesa_statement.csv"


def statement():
    return SimpleUploadedFile("mpesa_statement.csv", STATEMENT.read_bytes())


@pytest.fixture
def paid(offices):
    """Payments for lines 1 (right amount) and 2 (wrong amount); one in the period not on the
    statement; students for line 5 (exact), 20 (a swap of 0002), and SCE/IT/0006/2027, which with
    SCE/IT/0001/2021 makes line 6 (SCE/IT/0006/2021) ambiguous."""
    s1, s2, s5 = (make_student(r) for r in ("SCE/IT/0001/2021", "SHS/NUR/0002/2022", "SED/ART/0005/2022"))
    near6 = make_student("SCE/IT/0006/2027")
    return {
        "students": (s1, s2, s5, near6),
        "one": factories.PaymentFactory(student=s1, transaction_code="TL44LDQBWZ", amount=Decimal("12500")),
        "two": factories.PaymentFactory(student=s2, transaction_code="TXYA2CLMHP", amount=Decimal("999")),
        "missing": factories.PaymentFactory(student=s5, transaction_code="TZZZZZZZZ1",
                                            paid_at=timezone.make_aware(datetime.datetime(2026, 11, 12, 9))),
    }


def reconcile(fin_client):
    response = fin_client.post(f"{P}/reconcile/", {"file": statement()})
    rec = StatementReconciliation.objects.latest("pk")
    assert response.status_code == 302 and response["Location"] == f"{R}/{rec.pk}/change/"
    return rec, response


def row_of(rec, code):
    return rec.lines.get(receipt=code).row


def test_the_payment_list_has_the_reconcile_button(fin_client):
    body = fin_client.get(f"{P}/").content.decode()
    assert f"{P}/reconcile/" in body and "Reconcile M-PESA statement" in body
    assert fin_client.get(f"{P}/reconcile/").status_code == 200


def test_reconcile_a_statement_and_read_its_saved_page(fin_client, paid, finance_user):
    rec, response = reconcile(fin_client)
    assert any("Verified 1 payment" in m for m in messages_of(response))
    assert Payment.objects.get(pk=paid["one"].pk).verified_by == finance_user
    assert not Payment.objects.get(pk=paid["two"].pk).is_verified
    assert not Payment.objects.get(pk=paid["missing"].pk).is_verified
    body = fin_client.get(f"{R}/{rec.pk}/change/").content.decode()
    assert 'id="count-lines">20<' in body and 'id="count-verified">1<' in body and 'id="count-mismatched">1<' in body
    assert 'id="count-ambiguous">1<' in body and 'id="count-missing">1<' in body and "TZZZZZZZZ1" in body
    assert "one wrong character or two neighbouring characters swapped" in body      # the rule, on the page
    assert "Amount differs: recorded KES 999.00; not verified" in body
    line6 = body[body.index('id="line-7"'):body.index('id="line-8"')]            # SCE/IT/0006/2021, file line 7
    assert "Ambiguous — none proposed" in line6 and "SCE/IT/0001/2021" in line6 and "SCE/IT/0006/2027" in line6
    assert "Record and verify" not in line6
    line20 = body[body.index('id="line-21"'):]
    assert "typo: “20” typed for “02” (two characters swapped)" in line20 and "Record and verify" in line20
    # the only values a record form carries: which line, the code it shows, where to come back to
    table = body[body.index('id="lines-table"'):]
    names = set(re.findall(r'name="([^"]+)"', table[:table.index("</table>")]))
    assert names == {"csrfmiddlewaretoken", "line", "receipt", "show", "page"}
    # reloading the page runs nothing again
    assert fin_client.get(f"{R}/{rec.pk}/change/").status_code == 200 and StatementReconciliation.objects.count() == 1


def test_the_tabs_narrow_the_lines(fin_client, paid):
    rec, _ = reconcile(fin_client)
    body = fin_client.get(f"{R}/{rec.pk}/change/", {"show": "ambiguous"}).content.decode()
    assert body.count('class="border-t border-base-200 dark:border-base-800 align-top') == 1 and "TQ30JDC5VN" in body
    body = fin_client.get(f"{R}/{rec.pk}/change/", {"show": "to_record"}).content.decode()
    assert "TJT4KDF8ZC" in body and "TQ30JDC5VN" not in body and "TL44LDQBWZ" not in body
    for junk in ("<script>", "9" * 40, "", "all'"):
        assert fin_client.get(f"{R}/{rec.pk}/change/", {"show": junk, "page": junk}).status_code == 200


def test_record_and_verify_from_the_page(fin_client, paid, finance_user):
    rec, _ = reconcile(fin_client)
    s5 = paid["students"][2]
    row = row_of(rec, "TJT4KDF8ZC")
    response = fin_client.post(f"{R}/{rec.pk}/record/", {"line": row, "receipt": "TJT4KDF8ZC"})
    assert response.status_code == 302 and response["Location"] == f"{R}/{rec.pk}/change/"
    assert messages_of(response)[-1] == f"Recorded and verified TJT4KDF8ZC: KES 5,500.00 from {s5} (line {row})."
    payment = Payment.objects.get(transaction_code="TJT4KDF8ZC")
    assert (payment.student, payment.amount, payment.verified_by, payment.recorded_by) == (
        s5, Decimal("5500.00"), finance_user, finance_user)
    line = fin_client.get(f"{R}/{rec.pk}/change/").content.decode()
    line = line[line.index(f'id="line-{row}"'):line.index(f'id="line-{row + 1}"')]
    assert "Recorded since, verified" in line and "Record and verify" not in line
    # the same click again (a replay, a second tab)
    response = fin_client.post(f"{R}/{rec.pk}/record/", {"line": row, "receipt": "TJT4KDF8ZC"})
    assert "TJT4KDF8ZC already has a payment" in messages_of(response)[0]
    assert Payment.objects.filter(transaction_code="TJT4KDF8ZC").count() == 1


@pytest.mark.parametrize("post,words", [
    ({"line": "{row}", "receipt": "TJT4KDF8ZC", "amount": "1"}, "The form was changed: it carried amount"),
    ({"line": "{row}", "receipt": "TJT4KDF8ZC", "student": "1", "transaction_code": "X"}, "The form was changed"),
    ({"line": "{row}", "receipt": "TL44LDQBWZ"}, "the form was changed"),
    ({"line": "99999", "receipt": "TJT4KDF8ZC"}, "has no line 99999"),
    ({"line": "-1"}, "No line of the statement was given"),
    ({"line": "²"}, "No line of the statement was given"),
    ({"line": "9" * 30}, "No line of the statement was given"),
    ({}, "No line of the statement was given"),
    ({"line": "{ambiguous}"}, "does not say for certain"),
    ({"line": "{first}"}, "TL44LDQBWZ already has a payment"),
])
def test_forged_record_posts_are_refused_and_change_nothing(fin_client, paid, post, words):
    rec, _ = reconcile(fin_client)
    rows = {"row": row_of(rec, "TJT4KDF8ZC"), "ambiguous": row_of(rec, "TQ30JDC5VN"),
            "first": row_of(rec, "TL44LDQBWZ")}
    before = (Payment.objects.count(), Payment.history.count())
    response = fin_client.post(f"{R}/{rec.pk}/record/", {k: v.format(**rows) for k, v in post.items()})
    assert response.status_code == 302
    assert words in " ".join(messages_of(response))
    assert (Payment.objects.count(), Payment.history.count()) == before


@pytest.mark.parametrize("url", ["{R}/0/record/", "{R}/junk/record/", "{R}/99999/change/", "{R}/%C2%B2/change/",
                                 "{R}/0/result.xlsx", "{R}/{pk}/result.pdf"])
def test_junk_ids_are_not_found(fin_client, paid, url):
    rec, _ = reconcile(fin_client)
    response = fin_client.post(url.format(R=R, pk=rec.pk), {"line": row_of(rec, "TJT4KDF8ZC")})
    assert response.status_code in (302, 404)
    assert not Payment.objects.filter(transaction_code="TJT4KDF8ZC").exists()


def test_a_get_of_the_record_url_records_nothing(fin_client, paid):
    rec, _ = reconcile(fin_client)
    response = fin_client.get(f"{R}/{rec.pk}/record/", {"line": row_of(rec, "TJT4KDF8ZC")})
    assert response.status_code == 302 and not Payment.objects.filter(transaction_code="TJT4KDF8ZC").exists()


@pytest.mark.parametrize("who", ["lib_reviewer", "student", "registry_user"])
def test_other_roles_are_refused_everywhere(client, fin_client, who, request, paid):
    rec, _ = reconcile(fin_client)
    user = request.getfixturevalue(who)
    client.force_login(user.user if who == "student" else user)
    row = row_of(rec, "TJT4KDF8ZC")
    for method, url, data in [("get", f"{P}/reconcile/", {}), ("post", f"{P}/reconcile/", {"file": statement()}),
                              ("get", f"{R}/", {}), ("get", f"{R}/{rec.pk}/change/", {}),
                              ("post", f"{R}/{rec.pk}/record/", {"line": row, "receipt": "TJT4KDF8ZC"}),
                              ("get", f"{R}/{rec.pk}/result.xlsx", {}),
                              ("get", f"/finance/files/statement/{rec.pk}/", {})]:
        response = getattr(client, method)(url, data)
        assert response.status_code in (302, 403, 404), url
        if response.status_code == 302:
            assert "/finance/login/" in response["Location"]
    assert not Payment.objects.filter(transaction_code="TJT4KDF8ZC").exists()
    assert StatementReconciliation.objects.count() == 1
    # nor from their own site: the statement is finance's (payers' names and phones)
    site = {"lib_reviewer": "staff", "student": "student", "registry_user": "registry"}[who]
    assert client.get(f"/{site}/files/statement/{rec.pk}/").status_code == 404


# --- the list, the files ------------------------------------------------------------------------

def test_the_list_of_past_reconciliations_is_read_only(fin_client, paid):
    rec, _ = reconcile(fin_client)
    body = fin_client.get(f"{R}/").content.decode()
    assert f"#{rec.pk} mpesa_statement.csv" in body and f"/finance/files/statement/{rec.pk}/" in body
    assert f"{R}/add/" not in body
    assert fin_client.get(f"{R}/add/").status_code == 403
    response = fin_client.post(f"{R}/", {"action": "delete_selected", "_selected_action": [rec.pk], "post": "yes"})
    assert StatementReconciliation.objects.filter(pk=rec.pk).exists() and response.status_code in (200, 302)


def test_the_statement_file_downloads_as_uploaded(fin_client, paid):
    rec, _ = reconcile(fin_client)
    assert "mpesa" not in rec.file.name                      # stored under a random name
    response = fin_client.get(f"/finance/files/statement/{rec.pk}/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == STATEMENT.read_bytes()
    assert 'filename="mpesa_statement.csv"' in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_superuser_downloads_the_statement_from_admin(client, fin_client, paid, superuser):
    rec, _ = reconcile(fin_client)
    client.force_login(superuser)
    assert client.get(f"/admin/files/statement/{rec.pk}/").status_code == 200


def test_the_result_downloads_as_xlsx_and_csv_with_cells_neutralised(fin_client, finance_user, offices):
    make_student("SCE/CS/0042/2022")
    data = ('"Receipt No.","Completion Time","Paid In","A/C No."\n'
            '"TAAAAAAAA1","2026-11-10 10:00:31","5,500.00","=HYPERLINK(""http://x/"",""fees"")"\n'
            '"TAAAAAAAA2","2026-11-10 11:00:31","1,000.00","sce/cs/0042/2022"\n').encode()
    rec = payments_reconcile_statement(file=ContentFile(data, name="s.csv"), acting_user=finance_user).reconciliation
    response = fin_client.get(f"{R}/{rec.pk}/result.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["Row", "M-PESA code", "Completed", "Paid in (KES)"]
    assert rows[1][4] == "'=HYPERLINK(\"http://x/\",\"fees\")" and rows[1][7] == "No match"
    assert rows[2][7:9] == ["Exact registration number", "SCE/CS/0042/2022"]
    response = fin_client.get(f"{R}/{rec.pk}/result.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0].startswith(f"M-PESA reconciliation #{rec.pk}: s.csv")
    assert values[2][4].startswith("'=HYPERLINK") and values[3][8] == "SCE/CS/0042/2022"


# --- queries: constant whatever the number of lines --------------------------------------------

def many_lines(n, finance_user, prefix):
    students = [factories.StudentFactory() for _ in range(10)]
    for i, s in enumerate(students[:3]):
        factories.PaymentFactory(student=s, transaction_code=f"{prefix}{i:06d}", amount=Decimal("100"))
    accounts = [s.registration_number for s in students] + ["nobody", "SCE/CS/9999/2099"]
    head = '"Receipt No.","Completion Time","Paid In","A/C No."'
    lines = [f'"{prefix}{i:06d}","2026-11-10 10:00:{i % 60:02d}","{100 if i % 7 else 250}.00","{accounts[i % len(accounts)]}"'
             for i in range(n)]
    data = "\n".join([head, *lines]).encode()
    return payments_reconcile_statement(file=ContentFile(data, name="many.csv"), acting_user=finance_user).reconciliation


def test_the_result_page_runs_a_constant_number_of_queries(fin_client, finance_user, offices,
                                                           django_assert_max_num_queries):
    few, many = many_lines(12, finance_user, "TFEW"), many_lines(300, finance_user, "TMNY")
    assert many.lines_total == 300
    for rec in (few, many):
        with django_assert_max_num_queries(20):
            body = fin_client.get(f"{R}/{rec.pk}/change/").content.decode()
        assert "Record and verify" in body
    with django_assert_max_num_queries(20):
        assert fin_client.get(f"{R}/").status_code == 200
    with django_assert_max_num_queries(12):
        assert fin_client.get(f"{R}/{many.pk}/result.csv").status_code == 200


def test_the_list_runs_a_constant_number_of_queries(fin_client, finance_user, offices, django_assert_max_num_queries):
    for _ in range(30):
        StatementReconciliation.objects.create(original_name="x.csv", sha256="0" * 64, created_by=finance_user,
                                               file=ContentFile(b"x", name="x.csv"))
    with django_assert_max_num_queries(20):
        body = fin_client.get(f"{R}/").content.decode()
    assert body.count("x.csv") >= 30


# --- Release FIN hold from a payment ----------------------------------------------------------

@pytest.fixture
def owing(student, clearance, finance_user):
    bi = balances_import_preview(file=ContentFile(f"Reg No,Balance\n{student.registration_number},12500\n".encode(),
                                                  name="b.csv"), acting_user=finance_user)
    bi = balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert approval_of(clearance, "FIN").status == ClearanceApproval.Status.REJECTED
    return bi


def covering(student, owing, finance_user, amount="12500", verified=True):
    return factories.PaymentFactory(student=student, amount=Decimal(amount),
                                    paid_at=owing.applied_at + datetime.timedelta(hours=1),
                                    verified_at=timezone.now() if verified else None,
                                    verified_by=finance_user if verified else None)


def fin_import_hold(student):
    return Hold.objects.filter(student=student, department__code="FIN", source=Hold.Source.BALANCE_IMPORT).latest("pk")


def test_release_the_fin_hold_from_the_payment_page(fin_client, owing, student, clearance, finance_user):
    payment = covering(student, owing, finance_user)
    body = fin_client.get(f"{P}/{payment.pk}/change/").content.decode()
    assert f"Import #{owing.pk} shows KES 12,500.00" in body and "The next balance import is authoritative" in body
    assert f"{P}/{payment.pk}/release-fin-hold/" in body
    page = fin_client.get(f"{P}/{payment.pk}/release-fin-hold/").content.decode()
    assert f"released: payment {payment.transaction_code} covers the balance of import #{owing.pk}" in page
    assert "places the FIN hold again" in page
    response = fin_client.post(f"{P}/{payment.pk}/release-fin-hold/")
    assert response["Location"] == f"{P}/{payment.pk}/change/"
    assert "Released the FIN hold for 1 payment." in messages_of(response)
    hold = fin_import_hold(student)
    assert hold.status == Hold.Status.RELEASED and hold.released_for_payment == payment
    assert approval_of(clearance, "FIN").status == ClearanceApproval.Status.APPROVED
    # a replay: nothing more
    response = fin_client.post(f"{P}/{payment.pk}/release-fin-hold/")
    assert any("no active FIN hold from a balance import" in m for m in messages_of(response))


@pytest.mark.parametrize("amount,verified,words", [("12000", True, "KES 500.00 is still owed"),
                                                   ("12500", False, "not verified yet")])
def test_release_is_refused_with_the_reason(fin_client, owing, student, finance_user, amount, verified, words):
    payment = covering(student, owing, finance_user, amount=amount, verified=verified)
    assert words in fin_client.get(f"{P}/{payment.pk}/change/").content.decode()
    for response in (fin_client.get(f"{P}/{payment.pk}/release-fin-hold/"),
                     fin_client.post(f"{P}/{payment.pk}/release-fin-hold/")):
        assert response.status_code == 302 and any(words in m for m in messages_of(response))
    assert fin_import_hold(student).status == Hold.Status.ACTIVE


def test_release_fin_holds_as_a_bulk_action_reports_each_refusal(fin_client, owing, student, finance_user):
    good = covering(student, owing, finance_user)
    short = factories.PaymentFactory(amount=Decimal("5"), verified_at=timezone.now())   # a student with no import
    response = fin_client.post(f"{P}/", {"action": "release_fin_holds", "_selected_action": [good.pk, short.pk]})
    text = " ".join(messages_of(response))
    assert "Released the FIN hold for 1 payment." in text and "has no active FIN hold from a balance import" in text
    assert "The next balance import is authoritative" in text
    assert fin_import_hold(student).status == Hold.Status.RELEASED


@pytest.mark.parametrize("who", ["lib_reviewer", "registry_user"])
def test_other_roles_cannot_release_a_fin_hold_by_url(client, owing, student, finance_user, request, who):
    payment = covering(student, owing, finance_user)
    client.force_login(request.getfixturevalue(who))
    for response in (client.post(f"{P}/{payment.pk}/release-fin-hold/"),
                     client.post(f"{P}/", {"action": "release_fin_holds", "_selected_action": [payment.pk]})):
        assert response.status_code == 302 and "/finance/login/" in response["Location"]
    assert fin_import_hold(student).status == Hold.Status.ACTIVE


def test_lines_are_kept_as_read(fin_client, paid):
    rec, _ = reconcile(fin_client)
    assert ReconciliationLine.objects.filter(reconciliation=rec).count() == 20
