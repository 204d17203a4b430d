"""The portal and the console in a real browser: headless Chromium (Debian's package) driven by
Playwright against `restitution serve` on a free port, with the test clock.

Screenshots of each main page land in artifacts/screenshots/ (kept out of git).
"""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium "
        "(apt-get install -y chromium): browser tests skipped",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
expect = sync_api.expect

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
OPERATOR_KEY = "rst_op_e2e_key"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def photo_png(width: int = 240, height: int = 160) -> bytes:
    """A real PNG (a gradient with a dark 'crack'), made without an imaging library."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            crack = abs((x - width // 3) - (y // 2)) < 2
            row += bytes((30, 30, 30) if crack else (90 + x // 3, 120 + y // 3, 200 - x // 4))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}, timeout=10
        )

    def now(self) -> datetime:
        return datetime.fromisoformat(self.http.get("/v1/test/clock").json()["now"])

    def put_order(self, order_id: str, buyer: str, seller: str, **extra: Any) -> None:
        now = self.now()
        body = {
            "buyer_id": buyer,
            "seller_id": seller,
            "currency": "EUR",
            "placed_at": (now - timedelta(days=9)).isoformat(),
            "shipped_at": (now - timedelta(days=7)).isoformat(),
            "delivered_at": (now - timedelta(days=2)).isoformat(),
            "shipping_amount": 500,
            "payment": {"method": "paypal", "reference": f"pp_{order_id}"},
            "lines": [
                {"line_id": "l1", "sku": "PH-9", "title": "Smartphone X9", "quantity": 1,
                 "category": "electronics/phones", "unit_amount": 24900},
                {"line_id": "l2", "sku": "TS-1", "title": "Linen shirt", "quantity": 2,
                 "category": "apparel/shirts", "unit_amount": 2950},
            ],
            "seller_terms": {
                "free_return_shipping": False,
                "accepts_change_of_mind": False,
                "return_address": {"name": "Returns desk", "line1": "5 Dock Street",
                                   "city": "Rotterdam", "postal_code": "3011", "country": "NL"},
            },
            "return_shipping_estimate": 1200,
            **extra,
        }  # fmt: skip
        response = self.http.put(f"/v1/orders/{order_id}", json=body)
        assert response.status_code in (200, 201), response.text

    def portal_url(self, role: str, party_id: str) -> str:
        response = self.http.post("/v1/party_tokens", json={"role": role, "party_id": party_id})
        assert response.status_code == 201, response.text
        return str(response.json()["portal_url"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("e2e")
    port = _free_port()
    env = {
        **os.environ,
        "RESTITUTION_DATABASE_URL": f"sqlite:///{tmp / 'e2e.db'}",
        "RESTITUTION_TEST_CLOCK": "1",
        "RESTITUTION_OPERATOR_KEY": OPERATOR_KEY,
        "RESTITUTION_STORAGE_DIR": str(tmp / "evidence"),
        "RESTITUTION_KEY_FILE": str(tmp / "operator_key"),
    }
    env.pop("RESTITUTION_PUBLIC_URL", None)
    executable = Path(sys.executable).parent / "restitution"
    command = [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-sweeper"]
    log = (tmp / "server.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("restitution serve did not start:\n" + (tmp / "server.log").read_text())
            time.sleep(0.1)
        yield Server(base)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "cracked-screen.png"
    path.write_bytes(photo_png())
    return path


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def party_page(browser: Any, url: str, width: int = 1280) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900}, timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(url)
    return page


def test_damaged_phone_from_photo_to_refund(server: Server, browser: Any, photo: Path) -> None:
    server.put_order("o_e2e_1", "b_anna", "s_phones")
    buyer = party_page(browser, server.portal_url("buyer", "b_anna"))
    expect(buyer.locator("h1")).to_have_text("My orders")
    expect(buyer.get_by_text("Returns close").first).to_be_visible()
    shot(buyer, "buyer-orders")

    # the buyer opens a damaged-item case with a photo
    buyer.get_by_role("link", name="Report a problem").first.click()
    buyer.get_by_label(re.compile("Damaged")).check()
    buyer.get_by_role("button", name="Continue").click()
    expect(buyer.get_by_text("Your request: damaged")).to_be_visible()
    buyer.get_by_label(re.compile("Full refund of")).check()
    buyer.get_by_label("Describe the problem").fill("The screen arrived cracked across the corner.")
    buyer.get_by_label(re.compile("Photos or videos")).set_input_files(str(photo))
    expect(buyer.locator("#evidence-preview img")).to_have_count(1)
    shot(buyer, "buyer-claim-form")
    buyer.get_by_role("button", name="Open the case").click()
    expect(buyer.locator(".badge").first).to_have_text("awaiting seller")
    expect(buyer.locator(".timeline img.thumb")).to_have_count(1)
    case_id = re.search(r"Case (case_\w+)", buyer.locator(".crumbs").inner_text()).group(1)  # type: ignore[union-attr]
    shot(buyer, "buyer-case-opened")

    # the seller counters with a partial refund
    seller = party_page(browser, server.portal_url("seller", "s_phones"))
    expect(seller.locator(".case-card")).to_have_count(1)
    shot(seller, "seller-cases")
    seller.locator(".case-link").first.click()
    offer = seller.locator("form[action$='/make_offer']")
    offer.get_by_label(re.compile("Partial refund")).check()
    offer.get_by_label(re.compile("Amount in EUR")).fill("40.00")
    offer.get_by_role("button", name="Send the offer").click()
    expect(seller.locator(".badge").first).to_have_text("awaiting buyer")
    shot(seller, "seller-case-countered")

    # the buyer rejects it and escalates
    buyer.reload()
    expect(buyer.get_by_text("On the table: the seller's offer")).to_be_visible()
    reject = buyer.locator("form[action$='/reject']")
    reject.get_by_label(re.compile("Why")).fill("40 euros does not fix a broken screen.")
    reject.get_by_role("button", name="Reject the offer").click()
    escalate = buyer.locator("form[action$='/escalate']")
    escalate.get_by_label("What should the mediator know?").fill("The photo shows the crack.")
    escalate.get_by_role("button", name="Escalate to the platform").click()
    expect(buyer.locator(".badge").first).to_have_text("under review")

    # the mediator decides a full refund
    mediator = party_page(browser, server.portal_url("mediator", "m_e2e"))
    expect(mediator.locator("h1")).to_have_text("Review queue")
    shot(mediator, "mediator-queue")
    mediator.locator(f"a[href='/console/cases/{case_id}']").click()
    expect(mediator.get_by_text("Clauses that apply")).to_be_visible()
    expect(mediator.locator(".gallery-large img")).to_have_count(1)
    shot(mediator, "mediator-review")
    decide = mediator.locator("form[action$='/decide']")
    decide.get_by_label("Refund", exact=True).check()
    decide.get_by_label("Note to both parties").fill("The photo shows transit damage: full refund.")
    decide.get_by_role("button", name="Decide").click()
    expect(mediator.locator(".badge").first).to_have_text("resolved: refunded")
    mediator.get_by_role("link", name="Overview").click()
    expect(mediator.locator("svg.chart")).to_be_visible()
    shot(mediator, "mediator-overview")

    # the buyer sees the refund and when it should arrive
    buyer.reload()
    refund = buyer.locator("section[aria-labelledby='refund-h']")
    paid = server.http.get(f"/v1/cases/{case_id}").json()["refunded"]["amount"]
    expect(refund).to_contain_text(f"€{paid / 100:,.2f}")
    expect(refund).to_contain_text("succeeded")
    expect(refund).to_contain_text("Expected to arrive by")
    shot(buyer, "buyer-case-refunded")

    # another seller cannot see the case
    other = party_page(browser, server.portal_url("seller", "s_other"))
    response = other.goto(f"{server.base}/portal/cases/{case_id}")
    assert response is not None and response.status == 404
    expect(other.locator("h1")).to_have_text("Not found")


def test_change_of_mind_is_refused_with_the_clause(server: Server, browser: Any) -> None:
    server.put_order("o_e2e_2", "b_ben", "s_shirts")
    buyer = party_page(browser, server.portal_url("buyer", "b_ben"), width=360)
    shot(buyer, "buyer-orders-360px")
    buyer.goto(f"{server.base}/portal/orders/o_e2e_2/claim?line=l2")
    buyer.get_by_label(re.compile("Change of mind")).check()
    buyer.get_by_role("button", name="Continue").click()
    refusal = buyer.locator("#refusal")
    expect(refusal).to_contain_text("does not accept returns for a change of mind")
    expect(refusal).to_contain_text("R3")
    expect(refusal).to_contain_text("Change of mind is not accepted")
    shot(buyer, "buyer-change-of-mind-refused-360px")


def test_a_form_without_its_csrf_token_is_refused(server: Server, browser: Any) -> None:
    server.put_order("o_e2e_3", "b_cleo", "s_phones")
    buyer = party_page(browser, server.portal_url("buyer", "b_cleo"))
    buyer.goto(f"{server.base}/portal/orders/o_e2e_3/claim?line=l2&reason=quality_issue")
    buyer.locator("input[name=csrf_token]").evaluate_all(
        "inputs => inputs.forEach(i => i.remove())"
    )
    buyer.get_by_label("Describe the problem").fill("A seam came apart.")
    buyer.get_by_role("button", name="Open the case").click()
    expect(buyer.locator("h1")).to_have_text("Not allowed")
    expect(buyer.locator("main")).to_contain_text("did not come from this site")
    response = buyer.request.post(
        f"{server.base}/portal/orders/o_e2e_3/claim", form={"reason": "quality_issue"}
    )
    assert response.status == 403
    assert server.http.get("/v1/cases", params={"buyer_id": "b_cleo"}).json()["data"] == []


def test_a_return_with_nowhere_to_go_waits_for_the_sellers_address(
    server: Server, browser: Any, photo: Path
) -> None:
    terms = {"free_return_shipping": False, "accepts_change_of_mind": False}
    server.put_order("o_e2e_4", "b_dora", "s_lamps", seller_terms=terms)  # no return address
    buyer = party_page(browser, server.portal_url("buyer", "b_dora"))
    buyer.goto(f"{server.base}/portal/orders/o_e2e_4/claim?line=l1&reason=damaged")
    buyer.get_by_label(re.compile("Send it back for a refund")).check()
    buyer.get_by_label("Describe the problem").fill("The glass shade arrived broken.")
    buyer.get_by_label(re.compile("Photos or videos")).set_input_files(str(photo))
    buyer.get_by_role("button", name="Open the case").click()
    expect(buyer.locator(".badge").first).to_have_text("awaiting seller")

    # the seller accepts the return, then is asked where it should go
    seller = party_page(browser, server.portal_url("seller", "s_lamps"))
    seller.locator(".case-link").first.click()
    accept = seller.locator("form[action$='/accept']")
    accept.get_by_role("button", name="Accept this offer").click()
    expect(seller.locator(".badge").first).to_have_text("awaiting return shipment")
    expect(seller.locator(".deadline")).to_contain_text("give the buyer a return address")
    buyer.reload()
    expect(buyer.get_by_text("The seller has not yet said where to send the item")).to_be_visible()
    shot(buyer, "buyer-return-waiting-for-address")
    address = seller.locator("form[action$='/add_return_address']")
    for label, value in (("Name", "Lamps returns"), ("Street and number", "12 Canal Street"),
                         ("City", "Utrecht"), ("Postal code", "3511"),
                         ("Country (two letters, e.g. CN)", "NL")):  # fmt: skip
        address.get_by_label(label).fill(value)
    shot(seller, "seller-return-address")
    address.get_by_role("button", name="Save the return address").click()
    expect(seller.locator(".timeline")).to_contain_text("12 Canal Street")

    # the buyer now has somewhere to send it, and ten days from now
    buyer.reload()
    ship = buyer.locator("form[action$='/ship_return']")
    expect(ship.locator("address")).to_contain_text("12 Canal Street")
    expect(buyer.locator(".deadline")).to_contain_text("Your turn:")
    ship.get_by_label("Carrier").fill("PostNL")
    ship.get_by_label("Tracking number").fill("3SABCD1234567")
    ship.get_by_role("button", name="I have shipped the return").click()
    expect(buyer.locator(".badge").first).to_have_text("return in transit")
