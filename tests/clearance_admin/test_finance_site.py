"""/finance/ through the HTTP client, as a finance officer (and as people who must be refused)."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from core.models import ClearanceApproval, FinanceRecord, Hold, Payment
from tests import factories
from tests.conftest import messages_of

pytestmark = pytest.mark.django_db

F = "/finance/core"
LISTS = [f"{F}/financerecord/", f"{F}/hold/", f"{F}/payment/", f"{F}/balanceimport/"]


def verified(*payments):
    return [Payment.objects.get(pk=p.pk).verified_at is not None for p in payments]


# --- who may come in ----------------------------------------------------------------------------

def test_a_finance_officer_sees_every_list_and_the_dashboard(fin_client, student, offices):
    factories.FinanceRecordFactory(student=student, tuition_balance=Decimal("12500"))
    factories.HoldFactory(department=offices["FIN"], student=student, reason="Fee balance", amount=Decimal("12500"))
    factories.PaymentFactory(student=student, transaction_code="TL44LDQBWZ")
    factories.BalanceImportFactory(original_name="june-balances.xlsx")
    for url in ["/finance/", *LISTS]:
        response = fin_client.get(url)
        assert response.status_code == 200, url
    body = {url: fin_client.get(url).content.decode() for url in LISTS}
    assert student.registration_number in body[f"{F}/financerecord/"]
    assert "Owes KES 12,500.00" in body[f"{F}/financerecord/"]
    assert "Fee balance" in body[f"{F}/hold/"]
    assert "TL44LDQBWZ" in body[f"{F}/payment/"]
    assert "june-balances.xlsx" in body[f"{F}/balanceimport/"]


@pytest.mark.parametrize("who", ["lib_reviewer", "student"])
def test_department_staff_and_students_are_refused_at_login(client, who, request, offices):
    user = request.getfixturevalue(who)
    user = user.user if who == "student" else user
    response = client.post("/finance/login/", {"username": user.email, "password": "pass-1234"})
    assert response.status_code == 200
    assert "This site is for finance officers" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("who", ["lib_reviewer", "student"])
@pytest.mark.parametrize("url", ["/finance/", f"{F}/payment/", f"{F}/payment/add/", f"{F}/hold/",
                                 f"{F}/payment/verify-by-code/"])
def test_department_staff_and_students_cannot_type_a_finance_url(client, who, url, request, offices):
    user = request.getfixturevalue(who)
    client.force_login(user.user if who == "student" else user)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/finance/login/")


def test_a_typed_post_by_a_lib_reviewer_changes_nothing(client, lib_reviewer, student, offices):
    payment = factories.PaymentFactory(student=student)
    client.force_login(lib_reviewer)
    response = client.post(f"{F}/payment/", {"action": "verify_selected", "_selected_action": [payment.pk]})
    assert response.status_code == 302 and response["Location"].startswith("/finance/login/")
    response = client.post(f"{F}/payment/{payment.pk}/verify/")
    assert response.status_code == 302 and response["Location"].startswith("/finance/login/")
    assert verified(payment) == [False]


# --- finance records ----------------------------------------------------------------------------

def test_finance_records_are_read_only_and_filtered_by_balance(fin_client, student):
    owing = factories.FinanceRecordFactory(student=student, tuition_balance=Decimal("4500.50"))
    credit = factories.FinanceRecordFactory(tuition_balance=Decimal("-1200"))
    clear = factories.FinanceRecordFactory(tuition_balance=Decimal("0"))

    def listed(query):
        page = fin_client.get(f"{F}/financerecord/{query}")
        return {r.pk for r in page.context["cl"].result_list}

    assert listed("?balance=owing") == {owing.pk}
    assert listed("?balance=credit") == {credit.pk}
    assert listed("") == {owing.pk, credit.pk, clear.pk}
    assert listed(f"?q={student.last_name}") == {owing.pk}
    assert "Credit KES 1,200.00" in fin_client.get(f"{F}/financerecord/?balance=credit").content.decode()

    detail = fin_client.get(f"{F}/financerecord/{owing.pk}/change/")
    assert detail.status_code == 200
    assert 'name="tuition_balance"' not in detail.content.decode()  # shown, not editable
    response = fin_client.post(f"{F}/financerecord/{owing.pk}/change/", {"tuition_balance": "0"})
    assert response.status_code == 403
    owing.refresh_from_db()
    assert owing.tuition_balance == Decimal("4500.50")
    assert fin_client.get(f"{F}/financerecord/{owing.pk}/history/").status_code == 200


def test_graduation_fee_status_is_set_through_its_service_with_history(fin_client, finance_user):
    unpaid = factories.FinanceRecordFactory()
    paid = factories.FinanceRecordFactory(graduation_fee_status=FinanceRecord.GraduationFeeStatus.PAID)
    data = {"action": "set_graduation_fee_status", "_selected_action": [unpaid.pk, paid.pk]}
    page = fin_client.post(f"{F}/financerecord/", data)
    assert page.status_code == 200 and "New graduation fee status" in page.content.decode()

    # waiving needs a reason: the form says so and nothing changes
    page = fin_client.post(f"{F}/financerecord/", {**data, "confirm": "1", "status": "waived", "reason": ""})
    assert "A reason is required to waive a graduation fee." in page.content.decode()
    assert FinanceRecord.objects.filter(graduation_fee_status="waived").count() == 0

    response = fin_client.post(f"{F}/financerecord/", {**data, "confirm": "1", "status": "paid"}, follow=True)
    unpaid.refresh_from_db()
    assert unpaid.graduation_fee_status == "paid"
    assert unpaid.history.latest().history_user == finance_user
    text = " ".join(messages_of(response))
    assert "Marked the graduation fee paid on 1 record." in text
    assert f"{paid.student.registration_number}: the graduation fee is already paid" in text

    # one record, from its detail page
    url = f"{F}/financerecord/{paid.pk}/graduation-fee/"
    assert fin_client.get(url).status_code == 200
    response = fin_client.post(url, {"status": "waived", "reason": "Staff child"})
    assert response.status_code == 302
    paid.refresh_from_db()
    assert paid.graduation_fee_status == "waived"
    assert paid.history.latest().history_change_reason == "Graduation fee marked waived: Staff child"


# --- payments -----------------------------------------------------------------------------------

def test_verify_one_payment_from_its_row_or_detail(fin_client, finance_user, student):
    payment = factories.PaymentFactory(student=student)
    page = fin_client.get(f"{F}/payment/{payment.pk}/verify/")
    assert page.status_code == 200 and "Not verified yet." in page.content.decode()
    assert verified(payment) == [False]  # a GET changes nothing

    response = fin_client.post(f"{F}/payment/{payment.pk}/verify/", follow=True)
    assert "Verified 1 payment." in messages_of(response)
    payment.refresh_from_db()
    assert payment.verified_by == finance_user
    assert payment.history.latest().history_user == finance_user

    response = fin_client.post(f"{F}/payment/{payment.pk}/verify/", follow=True)
    assert "already verified by" in " ".join(messages_of(response))

    assert fin_client.post(f"{F}/payment/999999/verify/").status_code == 404


def test_verify_many_reports_done_and_refused_rows(fin_client, finance_user, registry_user, student):
    a, b = factories.PaymentFactory(student=student), factories.PaymentFactory(student=student)
    done_before = factories.PaymentFactory(student=student, transaction_code="TLDONE0001",
                                           verified_at=timezone.now(), verified_by=registry_user)
    response = fin_client.post(f"{F}/payment/", {"action": "verify_selected",
                                                 "_selected_action": [a.pk, b.pk, done_before.pk]}, follow=True)
    assert verified(a, b) == [True, True]
    done_before.refresh_from_db()
    assert done_before.verified_by == registry_user  # untouched
    text = " ".join(messages_of(response))
    assert "Verified 2 payments." in text
    assert "Refused 1" in text and "TLDONE0001" in text and "already verified by" in text


def test_verify_by_code(fin_client, finance_user, student):
    payment = factories.PaymentFactory(student=student, transaction_code="TL44LDQBWZ")
    url = f"{F}/payment/verify-by-code/"
    assert fin_client.get(url).status_code == 200

    page = fin_client.post(url, {"transaction_code": "TL44-BAD"})
    assert page.status_code == 200
    assert "An M-PESA code is 10 letters or digits" in page.context["form"].errors["transaction_code"][0]

    page = fin_client.post(url, {"transaction_code": "ZZ99ZZ99ZZ"})
    assert page.context["form"].errors["transaction_code"] == ["No payment is recorded with the code ZZ99ZZ99ZZ."]
    assert verified(payment) == [False]

    response = fin_client.post(url, {"transaction_code": " tl44 ldqbwz "}, follow=True)
    assert response.redirect_chain[-1][0] == url
    assert any("Verified" in m and "TL44LDQBWZ" in m for m in messages_of(response))
    payment.refresh_from_db()
    assert payment.verified_by == finance_user

    page = fin_client.post(url, {"transaction_code": "TL44LDQBWZ"})
    assert "already verified by" in page.context["form"].errors["transaction_code"][0]


def test_record_a_payment_and_refuse_a_duplicate_mpesa_code(fin_client, finance_user, student):
    other = factories.StudentFactory()
    data = {"registration_number": student.registration_number.lower(), "amount": "5500", "method": "mpesa",
            "transaction_code": "tl44ldqbwz", "phone": "0712345678"}
    response = fin_client.post(f"{F}/payment/add/", data)
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert (payment.student, payment.transaction_code, payment.amount, payment.recorded_by) == (
        student, "TL44LDQBWZ", Decimal("5500.00"), finance_user)

    page = fin_client.post(f"{F}/payment/add/", {**data, "registration_number": other.registration_number,
                                                 "transaction_code": "TL44LDQBWZ"})
    assert page.status_code == 200
    assert page.context["form"].errors["transaction_code"] == [
        f"TL44LDQBWZ is already recorded, for {student.registration_number} (KES 5,500.00)."]
    assert Payment.objects.count() == 1

    page = fin_client.post(f"{F}/payment/add/", {**data, "transaction_code": "SHORT"})
    assert "An M-PESA code is 10 letters or digits" in page.context["form"].errors["transaction_code"][0]
    page = fin_client.post(f"{F}/payment/add/", {**data, "registration_number": "XYZ/AB/0001/2020",
                                                 "transaction_code": "TL44LDQBW9"})
    assert page.context["form"].errors["registration_number"] == [
        "No student has the registration number XYZ/AB/0001/2020."]
    assert Payment.objects.count() == 1


def test_payments_filter_by_verified_and_method(fin_client, student):
    unverified = factories.PaymentFactory(student=student)
    done = factories.PaymentFactory(student=student, verified_at=timezone.now())
    bank = factories.PaymentFactory(student=student, method=Payment.Method.BANK, transaction_code="BANK-1")

    def listed(query):
        return {p.pk for p in fin_client.get(f"{F}/payment/{query}").context["cl"].result_list}

    assert listed("?verified=no") == {unverified.pk, bank.pk}
    assert listed("?verified=yes") == {done.pk}
    assert listed("?method__exact=bank") == {bank.pk}
    assert listed("?q=BANK-1") == {bank.pk}


# --- FIN holds ----------------------------------------------------------------------------------

def test_place_and_release_a_fin_hold_through_the_site(fin_client, finance_user, clearance, student, approval):
    response = fin_client.post(f"{F}/hold/add/", {"registration_numbers": student.registration_number.lower(),
                                                  "reason": "Unpaid library fine", "amount": "1500"}, follow=True)
    assert "Placed 1 finance hold." in messages_of(response)
    hold = Hold.objects.get(student=student)
    assert (hold.department.code, hold.amount, hold.status, hold.placed_by) == (
        "FIN", Decimal("1500.00"), Hold.Status.ACTIVE, finance_user)
    assert approval(clearance, "FIN").status == ClearanceApproval.Status.REJECTED  # finance follows the hold

    page = fin_client.post(f"{F}/hold/add/", {"registration_numbers": "SCE/CS/9999/2022", "reason": "x"})
    assert "No student has the registration number SCE/CS/9999/2022." in page.content.decode()
    assert Hold.objects.count() == 1

    # bulk release asks for an optional reason first, then releases
    data = {"action": "release_selected", "_selected_action": [hold.pk]}
    assert "Release the selected holds" in fin_client.post(f"{F}/hold/", data).content.decode()
    assert Hold.objects.get(pk=hold.pk).status == Hold.Status.ACTIVE
    response = fin_client.post(f"{F}/hold/", {**data, "confirm": "1", "reason": "Paid at the bank"}, follow=True)
    assert "Released 1 hold." in messages_of(response)
    hold.refresh_from_db()
    assert (hold.status, hold.released_by, hold.release_reason) == (Hold.Status.RELEASED, finance_user,
                                                                   "Paid at the bank")
    assert approval(clearance, "FIN").status == ClearanceApproval.Status.APPROVED


def test_waive_one_fin_hold_needs_a_reason(fin_client, finance_user, student, offices):
    hold = factories.HoldFactory(department=offices["FIN"], student=student, reason="Fee balance")
    page = fin_client.post(f"{F}/hold/{hold.pk}/waive/", {"reason": ""})
    assert page.status_code == 200 and page.context["form"].errors["reason"]
    assert Hold.objects.get(pk=hold.pk).status == Hold.Status.ACTIVE
    response = fin_client.post(f"{F}/hold/{hold.pk}/waive/", {"reason": "Bursary covers it"}, follow=True)
    assert "Waived 1 hold." in messages_of(response)
    hold.refresh_from_db()
    assert (hold.status, hold.release_reason) == (Hold.Status.WAIVED, "Bursary covers it")


def test_a_finance_officer_cannot_act_on_a_lib_hold(fin_client, student, offices):
    lib_hold = factories.HoldFactory(department=offices["LIB"], student=student, reason="Book not returned")
    fin_hold = factories.HoldFactory(department=offices["FIN"], student=student, reason="Fee balance")

    listed = {h.pk for h in fin_client.get(f"{F}/hold/?status=all").context["cl"].result_list}
    assert listed == {fin_hold.pk}
    for url in [f"{F}/hold/{lib_hold.pk}/change/", f"{F}/hold/{lib_hold.pk}/history/",
                f"{F}/hold/{lib_hold.pk}/release/"]:
        assert fin_client.get(url).status_code == 403, url
    assert fin_client.post(f"{F}/hold/{lib_hold.pk}/release/", {"reason": "x"}).status_code == 403
    assert fin_client.post(f"{F}/hold/{lib_hold.pk}/waive/", {"reason": "x"}).status_code == 403
    for action in ["release_selected", "waive_selected"]:
        response = fin_client.post(f"{F}/hold/?status=all", {"action": action, "_selected_action": [lib_hold.pk],
                                                             "confirm": "1", "reason": "x"}, follow=True)
        # the LIB row is outside the scope: counted, not named
        assert messages_of(response) == ["Nothing was selected.",
                                         "Refused: 1 selected hold is not in your list; nothing was done to them."]
    lib_hold.refresh_from_db()
    assert (lib_hold.status, lib_hold.released_at) == (Hold.Status.ACTIVE, None)
    assert lib_hold.history.count() == 1


def test_bulk_waive_asks_for_a_reason_and_reports_refused_rows(fin_client, finance_user, offices):
    active = factories.HoldFactory(department=offices["FIN"], reason="Fee balance")
    released = factories.HoldFactory(department=offices["FIN"], reason="Old balance", status=Hold.Status.RELEASED)
    data = {"action": "waive_selected", "_selected_action": [active.pk, released.pk], "confirm": "1"}
    page = fin_client.post(f"{F}/hold/", {**data, "reason": "  "})
    assert page.status_code == 200 and page.context["form"].errors["reason"]
    assert Hold.objects.get(pk=active.pk).status == Hold.Status.ACTIVE

    # the list shows active holds unless asked for all; the selection is made on "all"
    response = fin_client.post(f"{F}/hold/?status=all", {**data, "reason": "Senate waiver"}, follow=True)
    text = " ".join(messages_of(response))
    assert "Waived 1 hold." in text and "already released" in text
    assert Hold.objects.get(pk=active.pk).status == Hold.Status.WAIVED


def test_bulk_release_of_all_matching_rows_carries_the_selection_not_the_ids(fin_client, offices):
    holds = [factories.HoldFactory(department=offices["FIN"], reason=f"Balance {i}") for i in range(3)]
    lib = factories.HoldFactory(department=offices["LIB"], reason="Book")
    data = {"action": "release_selected", "_selected_action": [holds[0].pk], "select_across": "1"}
    page = fin_client.post(f"{F}/hold/", data)
    assert page.status_code == 200
    assert [v for k, v in page.context["hidden"] if k == "_selected_action"] == [str(holds[0].pk)]
    assert len(page.context["items"]) == 3
    response = fin_client.post(f"{F}/hold/", {**data, "confirm": "1", "reason": ""}, follow=True)
    assert "Released 3 holds." in messages_of(response)
    assert set(Hold.objects.values_list("status", flat=True).filter(pk__in=[h.pk for h in holds])) == {"released"}
    assert Hold.objects.get(pk=lib.pk).status == Hold.Status.ACTIVE


# --- balance imports ----------------------------------------------------------------------------

def test_balance_imports_are_read_only_with_their_errors(fin_client, finance_user):
    imp = factories.BalanceImportFactory(original_name="june.xlsx", uploaded_by=finance_user, rows_total=3,
                                         error_count=1, errors=[{"row": 7, "column": "Balance",
                                                                 "reason": "not an amount: 'abc'"}])
    page = fin_client.get(f"{F}/balanceimport/{imp.pk}/change/")
    assert page.status_code == 200
    assert "not an amount: &#x27;abc&#x27;" in page.content.decode()
    assert fin_client.get(f"{F}/balanceimport/add/").status_code == 403
    touched = factories.FinanceRecordFactory(last_import=imp)
    factories.FinanceRecordFactory()
    listed = fin_client.get(f"{F}/financerecord/?last_import={imp.pk}").context["cl"].result_list
    assert [r.pk for r in listed] == [touched.pk]
    assert fin_client.post(f"{F}/balanceimport/{imp.pk}/change/", {"status": "failed"}).status_code == 403


# --- dashboard ----------------------------------------------------------------------------------

def test_dashboard_numbers(fin_client, offices, superuser, open_request, approval):
    from core.services.approvals import approval_waive

    now = timezone.now()
    s1, s2, s3, s4 = (factories.StudentFactory() for _ in range(4))
    factories.FinanceRecordFactory(student=s1, tuition_balance=Decimal("12500"))
    factories.FinanceRecordFactory(student=s2, tuition_balance=Decimal("4500.50"))
    factories.FinanceRecordFactory(student=s3, tuition_balance=Decimal("-1200"),
                                   graduation_fee_status=FinanceRecord.GraduationFeeStatus.PAID)
    factories.FinanceRecordFactory(student=s4, tuition_balance=Decimal("0"))
    factories.HoldFactory(department=offices["FIN"], student=s1, amount=Decimal("12500"))
    factories.HoldFactory(department=offices["FIN"], student=s2, amount=Decimal("4500.50"))
    factories.HoldFactory(department=offices["FIN"], student=s3, status=Hold.Status.RELEASED, amount=Decimal("9"))
    factories.HoldFactory(department=offices["LIB"], student=s4, amount=Decimal("700"))
    r1, r2, r3, r4 = (open_request(s) for s in (s1, s2, s3, s4))
    # r1 and r2 open rejected (their FIN holds), r3 and r4 approved (rule 5); the office waives r2's
    approval_waive(approval=approval(r2, "FIN"), acting_user=superuser, reason="Bursary")
    factories.PaymentFactory(student=s1, amount=Decimal("1000"), paid_at=now)
    factories.PaymentFactory(student=s1, amount=Decimal("2000"), paid_at=now, verified_at=now)
    factories.PaymentFactory(student=s2, amount=Decimal("300"), paid_at=now - datetime.timedelta(days=10))
    factories.BalanceImportFactory(original_name="old.xlsx", created_at=now - datetime.timedelta(days=3))
    last = factories.BalanceImportFactory(original_name="latest.xlsx")

    response = fin_client.get("/finance/")
    assert response.status_code == 200
    s = response.context["summary"]
    assert (s.outstanding_total, s.students_owing) == (Decimal("17000.50"), 2)
    assert (s.credit_total, s.students_in_credit) == (Decimal("1200.00"), 1)
    assert (s.graduation_fees_unpaid, s.graduation_fees_unpaid_total) == (3, Decimal("16500.00"))
    assert (s.fin_holds_active, s.fin_holds_amount) == (2, Decimal("17000.50"))
    assert (s.approvals_pending, s.approvals_approved, s.approvals_rejected, s.approvals_waived) == (0, 2, 1, 1)
    assert (s.payments_week_count, s.payments_week_total) == (2, Decimal("3000.00"))
    assert (s.payments_unverified_count, s.payments_unverified_total) == (2, Decimal("1300.00"))
    assert s.last_import == last
    body = response.content.decode()
    assert "KES 17,000.50" in body and "latest.xlsx" in body


def test_dashboard_runs_a_few_queries_whatever_the_data(fin_client, offices, django_assert_max_num_queries):
    for _ in range(5):
        student = factories.StudentFactory()
        factories.FinanceRecordFactory(student=student, tuition_balance=Decimal("10"))
        factories.PaymentFactory(student=student)
        factories.HoldFactory(department=offices["FIN"], student=student)
    with django_assert_max_num_queries(12):
        assert fin_client.get("/finance/").status_code == 200


# --- constant queries ---------------------------------------------------------------------------

def _rows(kind, n, offices):
    for _ in range(n):
        student = factories.StudentFactory()
        if kind == "financerecord":
            factories.FinanceRecordFactory(student=student, tuition_balance=Decimal("100"),
                                           last_import=factories.BalanceImportFactory())
        elif kind == "hold":
            factories.HoldFactory(department=offices["FIN"], student=student)
        elif kind == "payment":
            factories.PaymentFactory(student=student, verified_at=timezone.now(),
                                     verified_by=factories.UserFactory())
        else:
            factories.BalanceImportFactory(uploaded_by=factories.UserFactory())


@pytest.mark.parametrize("kind", ["financerecord", "hold", "payment", "balanceimport"])
def test_changelists_run_a_constant_number_of_queries(fin_client, offices, kind,
                                                      django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = f"{F}/{kind}/"
    _rows(kind, 1, offices)
    fin_client.get(url)  # warm caches (content types, permissions)
    with CaptureQueriesContext(connection) as one:
        response = fin_client.get(url)
    assert len(response.context["cl"].result_list) == 1
    _rows(kind, 49, offices)
    with django_assert_max_num_queries(len(one)):
        response = fin_client.get(url)
    assert len(response.context["cl"].result_list) == 50


@pytest.mark.parametrize("name, content, what", [
    ("receipt.html", b"<!DOCTYPE html><html><script>alert(1)</script></html>", "receipt.html is a web page"),
    ("receipt.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "receipt.svg is an SVG image"),
])
def test_recording_a_payment_with_a_web_page_receipt_is_refused_on_the_form(fin_client, student, name, content, what):
    from django.core.files.uploadedfile import SimpleUploadedFile
    response = fin_client.post(f"{F}/payment/add/", {
        "registration_number": student.registration_number, "amount": "5500", "method": "mpesa",
        "transaction_code": "TL44LDQBWZ", "receipt": SimpleUploadedFile(name, content, content_type="image/png")})
    assert response.status_code == 200
    assert what in response.content.decode()
    assert not Payment.objects.exists()
