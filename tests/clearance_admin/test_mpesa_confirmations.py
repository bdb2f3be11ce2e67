"""/finance/ → M-PESA confirmations: every confirmation Daraja posted, the unmatched ones to look at,
read-only, for finance officers only."""
from __future__ import annotations

import pytest

from core.models import MpesaConfirmation
from core.services.mpesa import mpesa_c2b_confirm
from tests import factories
from tests.core.services.test_mpesa import daraja

pytestmark = pytest.mark.django_db
URL = "/finance/core/mpesaconfirmation/"


@pytest.fixture
def confirmations(db):
    factories.student_with_reg("SCE/CS/0001/2022")
    recorded = mpesa_c2b_confirm(payload=daraja(TransID="RKTQDM7W61", BillRefNumber="sce/cs/0001/2022")).confirmation
    unmatched = mpesa_c2b_confirm(payload=daraja(TransID="RKTQDM7W62", BillRefNumber="ADM 42",
                                                 TransAmount="2500")).confirmation
    return recorded, unmatched


def test_finance_sees_every_confirmation_and_which_to_look_at(fin_client, confirmations):
    recorded, unmatched = confirmations
    page = fin_client.get(URL).content.decode()
    assert "RKTQDM7W61" in page and "RKTQDM7W62" in page and "KES 2,500.00" in page
    assert "No student: to record by hand" in page and "ADM 42" in page and "not yet" in page
    look = fin_client.get(URL, {"look": "yes"}).content.decode()
    assert "RKTQDM7W62" in look and "RKTQDM7W61" not in look


def test_an_unmatched_one_recorded_by_hand_since_leaves_the_list_to_look_at(fin_client, confirmations):
    _, unmatched = confirmations
    p = factories.PaymentFactory(transaction_code="RKTQDM7W62", amount=unmatched.amount)
    look = fin_client.get(URL, {"look": "yes"}).content.decode()
    assert "RKTQDM7W62" not in look
    assert f"yes (payment #{p.pk})" in fin_client.get(URL).content.decode()


def test_the_detail_is_read_only_and_there_is_no_history_page(fin_client, confirmations):
    _, unmatched = confirmations
    page = fin_client.get(f"{URL}{unmatched.pk}/change/")
    assert page.status_code == 200 and b"ADM 42" in page.content and b'name="_save"' not in page.content
    assert fin_client.post(f"{URL}{unmatched.pk}/change/", {"bill_ref": "SCE/CS/0001/2022"}).status_code == 403
    assert fin_client.get(f"{URL}{unmatched.pk}/history/").status_code == 404
    assert fin_client.get(f"{URL}add/").status_code == 403
    assert fin_client.post(f"{URL}{unmatched.pk}/delete/", {"post": "yes"}).status_code == 403
    assert MpesaConfirmation.objects.filter(pk=unmatched.pk, bill_ref="ADM 42").exists()


@pytest.mark.parametrize("who", ["lib_reviewer", "registry_user", "student"])
def test_other_roles_never_see_it(client, confirmations, request, who):
    user = request.getfixturevalue(who)
    client.force_login(user.user if who == "student" else user)
    _, unmatched = confirmations
    for url in (URL, f"{URL}{unmatched.pk}/change/"):
        response = client.get(url)
        assert response.status_code in (302, 403, 404)
        if response.status_code == 302:
            assert "/finance/login/" in response["Location"]
