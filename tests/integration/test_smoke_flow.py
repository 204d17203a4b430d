from tests.integration.conftest import Api


def test_damaged_item_full_refund_without_return(api: Api) -> None:
    api.put_order()
    opened = api.open_case()
    assert opened.status_code == 201, opened.text
    case = opened.json()
    assert case["status"] == "awaiting_seller"
    seller = api.as_("seller", "s_1")
    accepted = seller("POST", f"/v1/cases/{case['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "resolved"  # the ledger settles in the same transaction
    final = seller("GET", f"/v1/cases/{case['id']}").json()
    assert final["status"] == "resolved"
    assert final["outcome"] == "refunded"
