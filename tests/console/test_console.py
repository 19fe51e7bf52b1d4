"""A moderator's work in the console, in a real Chromium against the real service."""

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Literal

import pytest
import redis.asyncio as aioredis
from playwright.sync_api import (
    APIResponse,
    Browser,
    BrowserContext,
    Dialog,
    Page,
    Request,
    Route,
    expect,
)

from service.domain import Order, Queue
from service.keys import KeySpace
from service.store import Store
from tests.console.conftest import UI_TIMEOUT_MS
from tests.console.support import Service, Site, new_site, screenshot, sign_in

# The first test waits for `civility serve` to load the model, which on a busy machine takes
# longer than the suite's usual per-test limit.
pytestmark = pytest.mark.timeout(300)

CALM = (
    "I disagree with the minister, but the summary of the talks is fair.",
    "Good article. The part about the negotiations was new to me.",
    "Does anyone know when the next round of talks is planned?",
    "The photo caption names the wrong city, please fix it.",
)


def hold(site: Site, count: int, prefix: str = "c") -> list[str]:
    ids = [f"{prefix}{number:02d}" for number in range(count)]
    for number, comment_id in enumerate(ids):
        site.post_comment(comment_id, f"{CALM[number % len(CALM)]} ({number})")
    return ids


def items(page: Page) -> list[str]:
    return [str(node.get_attribute("data-id")) for node in page.locator("#items > li").all()]


def signed_in(page: Page, site: Site, name: str = "Mo") -> None:
    sign_in(page, site.tokens[name])
    expect(page.locator("#who-name")).to_have_text(name)


def live_queue(page: Page, site: Site, count: int) -> None:
    """The page opened afresh on a clock the test moves, signed in, its `count` comments listed
    and its event stream live."""
    page.clock.install()
    page.reload()
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(count)
    expect(page.locator("#live")).to_have_text("live")


def waits_for(page: Page, caught: list[Any], what: str, count: int = 1) -> None:
    """Until a route handler has caught `count` requests (the list it appends them to)."""
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while len(caught) < count:
        assert time.monotonic() < deadline, what
        page.wait_for_timeout(20)


@contextmanager
def page_back(page: Page) -> Iterator[None]:
    """Until the console is done with the page of the queue the block lets come, shown or
    dropped (the list counts the pages that came back)."""
    before = int(page.locator("#items").get_attribute("data-pages") or 0)
    yield
    expect(page.locator("#items")).to_have_attribute("data-pages", str(before + 1))


def frames_drawn(page: Page) -> None:
    """Until the frame after the next is drawn: what a status region was given to say before,
    it has written by then (render.js's announce)."""
    page.evaluate(
        "() => new Promise((drawn) => requestAnimationFrame(() => requestAnimationFrame(drawn)))"
    )


@contextmanager
def admin_loads_back(page: Page, count: int) -> Iterator[None]:
    """Until the admin view is done with the `count` moderator lists and policies the block lets
    come, shown or dropped (the view counts those that came back)."""
    before = int(page.locator("#admin").get_attribute("data-loads") or 0)
    yield
    expect(page.locator("#admin")).to_have_attribute("data-loads", str(before + count))


def first_stream_connection_fails(page: Page) -> list[Route]:
    """The event stream's first connection fails before naming its starting point; the
    reconnects are held back in the list returned, for the test to fulfil or let go."""
    failed: list[Route] = []
    waiting: list[Route] = []

    def fail_first(route: Route) -> None:
        if failed:
            waiting.append(route)
        else:
            failed.append(route)
            route.abort()

    page.route(re.compile(r"/events$"), fail_first)
    return waiting


def test_sign_in_keeps_the_token_in_the_tab_only_and_sign_out_forgets_it(
    page: Page, context: BrowserContext, site: Site
) -> None:
    hold(site, 2)
    expect(page.get_by_role("navigation", name="Views")).to_be_hidden()
    sign_in(page, "cmt_wrong")
    expect(page.locator("#sign-in-error")).to_have_text(
        "That token is not valid (wrong, or revoked). Check it and try again."
    )
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.get_by_role("navigation", name="Views")).to_be_visible()
    expect(page.locator("#toast")).to_be_hidden()
    assert site.tokens["Mo"] not in page.url
    assert context.cookies() == []
    assert page.evaluate("Object.keys(localStorage).length") == 0
    assert page.evaluate("sessionStorage.getItem('civility.token')") == site.tokens["Mo"]
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    expect(page.locator("#items > li")).to_have_count(0)


def test_twenty_held_comments_are_cleared_by_keyboard_alone(page: Page, site: Site) -> None:
    ids = hold(site, 20)
    page.get_by_label("Token").focus()
    page.keyboard.type(site.tokens["Mo"])
    page.keyboard.press("Enter")
    expect(page.locator("#items > li")).to_have_count(20)
    expect(page.locator("[data-count=pending]")).to_have_text("20")
    page.keyboard.press("j")
    page.keyboard.press("k")
    for left in range(19, -1, -1):
        page.keyboard.press("a")
        expect(page.locator("#items > li")).to_have_count(left)
    expect(page.locator("#queue-message")).to_have_text(
        "Nothing to moderate in pending. Well done."
    )
    expect(page.locator("[data-count=pending]")).to_have_text("0")
    assert site.queue_ids() == []
    assert {site.comment(comment_id)["state"] for comment_id in ids} == {"approved"}
    assert site.comment(ids[0])["decided_by_name"] == "Mo"


def test_reject_asks_for_a_reason_and_spam_takes_one_key(page: Page, site: Site) -> None:
    first, second = hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    target = items(page)[0]
    page.locator("#items > li").first.get_by_role("button", name="Reject").click()
    dialog = page.get_by_role("dialog", name="Reject: why?")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Reason").select_option("OFF_TOPIC")
    dialog.get_by_label("Note (optional)").fill("about another article")
    dialog.get_by_role("button", name="Reject").click()
    expect(page.locator("#items > li")).to_have_count(1)
    rejected = site.comment(target)
    assert rejected["state"] == "rejected"
    assert rejected["reasons"] == ["OFF_TOPIC"]
    assert rejected["history"][-1]["note"] == "about another article"
    page.keyboard.press("s")
    expect(page.locator("#items > li")).to_have_count(0)
    assert {site.comment(first)["state"], site.comment(second)["state"]} == {"rejected", "spam"}


def test_bulk_select_and_approve(page: Page, site: Site) -> None:
    hold(site, 5)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(5)
    shown = items(page)
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.locator("#items > li").nth(2).get_by_role("checkbox").check()
    expect(page.locator("#selection")).to_have_text("3 selected")
    page.get_by_role("button", name="Approve selected").click()
    expect(page.locator("#items > li")).to_have_count(2)
    assert items(page) == shown[3:]
    assert [site.comment(comment_id)["state"] for comment_id in shown[:3]] == ["approved"] * 3
    expect(page.locator("#toast-text")).to_have_text("Approved 3 comments.")


# Keeps a live region's words and each change of them in the body's data-drawn (JSON), where
# the test waits for them: every state the region's words were left in by a task of the page's (a
# mutation observer is called once a task's changes are done), so words written anew after
# an empty region show as "", then the words, whatever the machine's frame rate.
DRAWN = """(selector) => {
    const node = document.querySelector(selector);
    const drawn = [node.textContent];
    document.body.dataset.drawn = JSON.stringify(drawn);
    new MutationObserver(() => {
        if (drawn.at(-1) === node.textContent) return;
        drawn.push(node.textContent);
        document.body.dataset.drawn = JSON.stringify(drawn);
    }).observe(node, { childList: true, characterData: true, subtree: true });
}"""


def test_a_second_bulk_decision_with_the_same_words_is_announced_again(
    page: Page, site: Site
) -> None:
    hold(site, 4)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(4)
    page.evaluate(DRAWN, "#toast-text")
    for left in (2, 0):
        page.keyboard.press("k")
        page.keyboard.press("x")
        page.keyboard.press("j")
        page.keyboard.press("x")
        expect(page.locator("#selection")).to_have_text("2 selected")
        page.get_by_role("button", name="Approve selected").click()
        expect(page.locator("#items > li")).to_have_count(left)
        expect(page.locator("#toast-text")).to_have_text("Approved 2 comments.")
    # The live region is drawn empty between the two, so its words are new to a screen reader.
    drawn = ["", "Approved 2 comments.", "", "Approved 2 comments."]
    expect(page.locator("body")).to_have_attribute(
        "data-drawn", json.dumps(drawn, separators=(",", ":"))
    )


def test_a_cards_message_said_twice_in_the_same_words_is_announced_again(
    page: Page, site: Site
) -> None:
    hold(site, 1)
    sam = site.add_moderator("Sam")
    status, body = site.service.call(
        "POST", f"/v1/sites/{site.id}/comments/c00/claim", {}, token=sam
    )
    assert status == 200, body
    signed_in(page, site)
    card = page.locator('#items > li[data-id="c00"]')
    expect(card.locator(".claim.theirs")).to_be_visible()
    page.evaluate(DRAWN, '#items > li[data-id="c00"] .item-message')
    card.get_by_role("button", name="Open").click()
    message = card.locator(".item-message")
    expect(message).to_contain_text("Someone else is on it: Sam holds this comment")
    words = message.text_content()
    card.get_by_role("button", name="Open").click()
    # Emptied for a drawn frame, the same words are new to a screen reader.
    drawn = ["", words, "", words]
    expect(page.locator("body")).to_have_attribute(
        "data-drawn", json.dumps(drawn, separators=(",", ":"))
    )


# What a background tab is to the page: hidden, and its frames never drawn (the frame callbacks
# asked for are kept, never run). Each addition to the toast's words is kept in the body's
# data-added (JSON), as a live region announces what is added to it.
HIDE = """() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    document.dispatchEvent(new Event("visibilitychange"));
}"""
PAUSE_FRAMES = """() => {
    window.requestAnimationFrame = () => 1;
    const node = document.getElementById("toast-text");
    const added = [];
    new MutationObserver((records) => {
        for (const record of records) {
            const words = [...record.addedNodes].map((part) => part.textContent).join("");
            if (words) added.push(words);
        }
        document.body.dataset.added = JSON.stringify(added);
    }).observe(node, { childList: true, subtree: true, characterData: true });
}"""


def test_messages_said_in_a_background_tab_are_there_at_once_and_again_when_repeated(
    page: Page, site: Site
) -> None:
    hold(site, 5)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(5)
    first = items(page)[0]
    page.evaluate(PAUSE_FRAMES)
    page.evaluate(HIDE)
    page.keyboard.press("a")
    expect(page.locator("#items > li")).to_have_count(4)
    toast = page.get_by_role("status").and_(page.locator("#toast-text"))
    expect(toast).to_have_text(f"Approved comment {first}.")
    for left in (2, 0):
        page.keyboard.press("k")
        page.keyboard.press("x")
        page.keyboard.press("j")
        page.keyboard.press("x")
        expect(page.locator("#selection")).to_have_text("2 selected")
        page.get_by_role("button", name="Approve selected").click()
        expect(page.locator("#items > li")).to_have_count(left)
        expect(toast).to_have_text("Approved 2 comments.")
    # The same words twice are added twice: new to the region, so said again.
    added = [f"Approved comment {first}.", "Approved 2 comments.", "Approved 2 comments."]
    expect(page.locator("body")).to_have_attribute(
        "data-added", json.dumps(added, separators=(",", ":"))
    )


def test_a_message_waiting_for_a_frame_is_written_when_the_tab_is_hidden(
    page: Page, site: Site
) -> None:
    hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    first = items(page)[0]
    # The tab goes to the background after the decision, before a frame could draw its words.
    page.evaluate(PAUSE_FRAMES)
    page.keyboard.press("a")
    expect(page.locator("#items > li")).to_have_count(1)
    expect(page.locator("#toast-text")).to_have_text("")
    page.evaluate(HIDE)
    expect(page.locator("#toast-text")).to_have_text(f"Approved comment {first}.")


def test_an_undo_the_service_could_not_take_is_offered_again(page: Page, site: Site) -> None:
    hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    first = items(page)[0]
    page.keyboard.press("a")
    expect(page.locator("#toast-text")).to_have_text(f"Approved comment {first}.")
    # Redis away: the service answers 503 for the whole request, and nothing is undone.
    unavailable = {"error": {"code": "unavailable", "message": "Redis unavailable"}}
    page.route(
        re.compile(r"/decisions$"),
        lambda route: route.fulfill(status=503, json=unavailable),
    )
    page.keyboard.press("u")
    expect(page.locator("#queue-message")).to_have_text("Redis unavailable (503) Reload")
    assert site.comment(first)["state"] == "approved"
    expect(page.locator("#toast-text")).to_have_text(f"Approved comment {first}.")
    page.unroute(re.compile(r"/decisions$"))
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.locator("#queue-message")).to_have_text("Undone.")
    assert site.comment(first)["state"] == "pending"


def test_undo_from_the_toast_and_by_key(page: Page, site: Site) -> None:
    hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    first = items(page)[0]
    page.keyboard.press("a")
    expect(page.locator("#toast-text")).to_have_text(f"Approved comment {first}.")
    assert site.comment(first)["state"] == "approved"
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.locator("#queue-message")).to_have_text("Undone.")
    assert site.comment(first)["state"] == "pending"
    page.keyboard.press("s")
    expect(page.locator("#items > li")).to_have_count(1)
    page.keyboard.press("u")
    expect(page.locator("#items > li")).to_have_count(2)
    history = site.comment(first)["history"]
    assert [entry["action"] for entry in history] == [
        "create",
        "approve",
        "reopen",
        "spam",
        "reopen",
    ]


def test_a_comment_claimed_by_another_moderator_is_a_conflict_in_words(
    browser: Browser, service: Service, site: Site
) -> None:
    hold(site, 3)
    site.add_moderator("Alice")
    site.add_moderator("Bob")
    alice_context, bob_context = browser.new_context(), browser.new_context()
    try:
        alice, bob = alice_context.new_page(), bob_context.new_page()
        for page, name in [(alice, "Alice"), (bob, "Bob")]:
            page.goto(f"{service.url}/console")
            signed_in(page, site, name)
            expect(page.locator("#items > li")).to_have_count(3)
        alice.get_by_role("button", name="Claim 10").click()
        expect(alice.locator(".claim.mine")).to_have_count(3)
        expect(alice.locator(".claim.mine").first).to_contain_text(re.compile(r"\d:\d\d left"))
        # Bob's page learns of the claims live; deciding anyway is refused, in words.
        expect(bob.locator(".claim.theirs")).to_have_count(3)
        expect(bob.locator(".claim.theirs").first).to_contain_text("Claimed by Alice")
        target = items(bob)[0]
        bob.keyboard.press("a")
        message = bob.locator(f'#items > li[data-id="{target}"] .item-message')
        expect(message).to_contain_text("Someone else is on it: Alice holds this comment until")
        expect(message.get_by_role("button", name="Reload")).to_be_visible()
        assert site.comment(target)["state"] == "pending"
        alice.keyboard.press("a")
        expect(alice.locator("#items > li")).to_have_count(2)
    finally:
        alice_context.close()
        bob_context.close()


def test_opening_a_comment_claims_it_and_another_opener_is_told_who_has_it(
    browser: Browser, service: Service, site: Site
) -> None:
    ids = hold(site, 2)
    site.add_moderator("Alice")
    site.add_moderator("Bob")
    alice_context, bob_context = browser.new_context(), browser.new_context()
    try:
        alice, bob = alice_context.new_page(), bob_context.new_page()
        for page, name in [(alice, "Alice"), (bob, "Bob")]:
            page.goto(f"{service.url}/console")
            signed_in(page, site, name)
            expect(page.locator("#items > li")).to_have_count(2)
        opened = alice.locator(f'#items > li[data-id="{ids[1]}"]')
        opened.get_by_role("button", name="Open").click()
        expect(opened.locator(".claim.mine")).to_contain_text(re.compile(r"\d:\d\d left"))
        assert site.comment(ids[1])["claimed_by_name"] == "Alice"
        # Bob's page hears of the claim; opening the comment anyway is refused, in words.
        taken = bob.locator(f'#items > li[data-id="{ids[1]}"]')
        expect(taken.locator(".claim.theirs")).to_contain_text("Claimed by Alice")
        taken.get_by_role("button", name="Open").click()
        message = bob.locator(f'#items > li[data-id="{ids[1]}"] .item-message')
        expect(message).to_contain_text("Someone else is on it: Alice holds this comment until")
        expect(message.get_by_role("button", name="Reload")).to_be_visible()
        message.get_by_role("button", name="Reload").click()
        expect(message).to_be_empty()
        expect(taken.locator(".claim.theirs")).to_be_visible()
        # By keyboard: the focused comment opens with `o`.
        for _ in range(items(bob).index(ids[0])):
            bob.keyboard.press("j")
        bob.keyboard.press("o")
        expect(bob.locator(f'#items > li[data-id="{ids[0]}"] .claim.mine')).to_be_visible()
        assert site.comment(ids[0])["claimed_by_name"] == "Bob"
    finally:
        alice_context.close()
        bob_context.close()


def test_keys_pressed_while_a_reload_loads_act_on_the_comments_shown(
    page: Page, site: Site
) -> None:
    hold(site, 3)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    shown = items(page)
    # The reload's page is held back until the keys are pressed: what a slow answer does.
    held: list[Route] = []
    page.route(re.compile(r"/queue\?"), lambda route: held.append(route))
    with page.expect_request(re.compile(r"/queue\?")):
        page.locator("#queue-filters").get_by_role("button", name="Apply").click()
    page.keyboard.press("j")
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", shown[1])
    page.keyboard.press("o")
    held[0].continue_()
    expect(page.locator(f'#items > li[data-id="{shown[1]}"] .claim.mine')).to_be_visible()
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", shown[1])
    assert items(page) == shown
    assert site.comment(shown[1])["claimed_by_name"] == "Mo"
    assert site.comment(shown[0]).get("claimed_by") is None


def test_a_comment_selected_while_a_reload_loads_stays_selected_only_if_its_list_has_it(
    page: Page, site: Site
) -> None:
    hold(site, 3)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    # The reload for one author's comments is held back while two of the old list are selected.
    held: list[Route] = []
    page.route(re.compile(r"/queue\?"), lambda route: held.append(route))
    page.locator("#queue-filters").get_by_role("textbox", name="Author").fill("reader-c01")
    with page.expect_request(re.compile(r"/queue\?")):
        page.locator("#queue-filters").get_by_role("button", name="Apply").click()
    for comment_id in ("c00", "c01"):
        page.locator(f'#items > li[data-id="{comment_id}"]').get_by_role("checkbox").check()
    expect(page.locator("#selection")).to_have_text("2 selected")
    held[0].continue_()
    expect(page.locator("#items > li")).to_have_count(1)
    # The comment the new list lacks is no longer selected: a bulk decision would decide it unseen.
    expect(page.locator("#selection")).to_have_text("1 selected")
    page.get_by_role("button", name="Approve selected").click()
    expect(page.locator("#items > li")).to_have_count(0)
    assert site.comment("c01")["state"] == "approved"
    assert site.comment("c00")["state"] == "pending"


def test_a_revoked_token_is_signed_out_at_its_next_request(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    revoked = service.call("DELETE", f"/v1/sites/{site.id}/moderators/{site.moderator_ids['Mo']}")
    assert revoked == (204, None)
    page.keyboard.press("a")
    expect(page.locator("#sign-in-error")).to_have_text(
        "Your token is no longer valid (it was revoked or changed): you have been signed out."
    )
    assert page.evaluate("sessionStorage.length") == 0
    assert len(site.queue_ids()) == 2


def test_a_new_comment_appears_live(page: Page, site: Site) -> None:
    hold(site, 1)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(1)
    expect(page.locator("#live")).to_have_text("live")
    site.post_comment("late", "A late reader asks whether the talks will be streamed.")
    expect(page.locator('#items > li[data-id="late"]')).to_be_visible()
    expect(page.locator("#queue-message")).to_have_text("New comment late arrived.")
    expect(page.locator("[data-count=pending]")).to_have_text("2")


def test_comments_arriving_together_are_counted_in_the_plural_and_one_alone_in_the_singular(
    page: Page, site: Site
) -> None:
    hold(site, 1)
    live_queue(page, site, 1)
    # The page's time stands still: what arrives meanwhile is gathered, as in a burst.
    page.clock.pause_at(time.time() + 1)
    page.evaluate(QUEUE_SAID)
    bursts = {
        "4 new comments arrived.": ["n1", "n2", "n3", "n4"],
        "New comments p1 and p2 arrived.": ["p1", "p2"],
        "New comment s1 arrived.": ["s1"],
    }
    for words, burst in bursts.items():
        for comment_id in burst:
            site.post_comment(comment_id, f"{CALM[0]} ({comment_id})")
            # Each shown before the next comes, so that the names come in that order.
            expect(page.locator(f'#items > li[data-id="{comment_id}"]')).to_be_visible()
        page.clock.run_for(1_000)
        expect(page.locator("#queue-message")).to_have_text(words)
    assert page.evaluate("window.said") == list(bursts)


def test_a_comment_arriving_live_takes_its_place_in_the_order_shown(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 3)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    expect(page.locator("#live")).to_have_text("live")
    site.post_comment("rude", "You are a stupid idiot and everyone laughs at you.")
    expect(page.locator('#items > li[data-id="rude"]')).to_be_visible()
    status, listed = service.call("GET", f"/v1/sites/{site.id}/queue?order=priority")
    assert status == 200, listed
    riskiest_first = [item["id"] for item in listed["items"]]
    # The riskiest comment arrived last, and goes first, as a reload would show it.
    assert riskiest_first[0] == "rude"
    assert items(page) == riskiest_first
    expect(page.locator("#items > li").first).to_have_attribute("data-id", "rude")


HOSTILE = {
    "script": "<script>alert('script')</script> hello",
    "img": "<img src=x onerror=alert('img')> look",
    "link": "<a href=\"javascript:alert('link')\">click me</a> and https://evil.example/x",
    "rtl": "Normal start \u202eevil reversed text\u202c and the end",
    "long": "word " * 4_000,
}


def test_each_card_says_how_long_its_comment_has_waited_in_the_queue(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 2)
    # c00 entered the queue two hours ago, whenever it was written.
    oldest = KeySpace().queue_index(site.id, Queue.PENDING, Order.OLDEST)
    score = service.redis.zscore(oldest, "c00")
    assert score is not None
    service.redis.zadd(oldest, {"c00": score - 2 * 3_600_000})
    signed_in(page, site)
    expect(page.locator('#items > li[data-id="c00"] .meta')).to_contain_text("waiting 2h")
    expect(page.locator('#items > li[data-id="c01"] .meta')).to_contain_text(
        re.compile(r"waiting \d+s")
    )


def test_a_second_look_hold_shows_its_reason_and_the_blended_scores(
    page: Page, service: Service, site: Site
) -> None:
    (held,) = hold(site, 1)
    # What the second look's script stores when the blend holds a comment intake published.
    service.redis.hset(
        KeySpace().comment(site.id, held),
        mapping={
            "reasons": json.dumps(["SECOND_LOOK", "TOXIC"]),
            "look_state": "held",
            "look_queued_at": 1_800_000_000_000,
            "look_at": 1_800_000_001_500,
            "look_scores": json.dumps({"toxicity": 0.81, "identity_attack": 0.64, "spam": 0.02}),
            "look_model": "1.5.0",
        },
    )
    signed_in(page, site)

    item = page.locator(f'#items > li[data-id="{held}"]')
    expect(item.get_by_role("list", name="Reasons")).to_have_text("SECOND_LOOKTOXIC")
    blended = item.get_by_role("list", name="Second look scores")
    expect(blended.locator("li").first).to_have_text("toxicity81%")
    expect(blended.locator("li")).to_have_count(3)
    # The lexical scores stay where they were.
    expect(item.get_by_role("list", name="Scores", exact=True)).to_be_visible()


def test_an_item_links_its_article_by_title_in_a_new_tab(page: Page, site: Site) -> None:
    titled = {"id": "talks", "title": "<b>Talks</b> & more", "url": "https://news.example/talks"}
    site.post_comment("linked", CALM[0], article=titled)
    site.post_comment("plain", CALM[1], article={"id": "untitled"})
    signed_in(page, site)

    link = page.locator('#items > li[data-id="linked"] a.article')
    expect(link).to_have_text("<b>Talks</b> & more")
    expect(link).to_have_attribute("href", "https://news.example/talks")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    plain = page.locator('#items > li[data-id="plain"]')
    expect(plain.locator(".article")).to_have_text("untitled")
    assert plain.locator("a.article").count() == 0


def test_the_reason_filter_asks_the_api_for_that_reasons_queue(
    page: Page, service: Service, site: Site
) -> None:
    ids = hold(site, 3)
    # Reopened with a reason: back in the queue under that reason alone.
    for action, extra in (("approve", {}), ("reopen", {"reason": "TOXIC"})):
        status, body = service.call(
            "POST", f"/v1/sites/{site.id}/comments/{ids[1]}/decision", {"action": action, **extra}
        )
        assert status == 200, body
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)

    filters = page.get_by_role("form", name="Queue filters")
    filters.get_by_label("Reason").select_option("TOXIC")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#items > li")).to_have_count(1)
    assert items(page) == [ids[1]]
    assert any("/queue?" in url and "reason=TOXIC" in url for url in asked)
    filters.get_by_label("Reason").select_option("PREMOD")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#items > li")).to_have_count(2)


def test_filters_the_service_refuses_are_said_in_its_words(page: Page, site: Site) -> None:
    hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    filters = page.get_by_role("form", name="Queue filters")
    # An article and an author together are taken: that author's comments in that article.
    filters.get_by_role("textbox", name="Article").fill("a1")
    filters.get_by_role("textbox", name="Author").fill("reader-c00")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#items > li")).to_have_count(1)
    assert items(page) == ["c00"]
    expect(page.locator("#queue-message")).to_have_text("")
    # A field the service refuses is named.
    filters.get_by_role("textbox", name="Author").fill("")
    filters.get_by_role("textbox", name="Article").fill("a1\u00e9")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#queue-message")).to_contain_text("Refused: article: ")


def test_filters_that_match_no_comment_say_so_rather_than_the_queue_is_clear(
    page: Page, site: Site
) -> None:
    hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    filters = page.get_by_role("form", name="Queue filters")
    filters.get_by_role("textbox", name="Author").fill("nobody-here")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#items > li")).to_have_count(0)
    expect(page.locator("#queue-message")).to_have_text(
        "No comment in pending matches the filters."
    )
    filters.get_by_role("textbox", name="Author").fill("")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.locator("#queue-message")).to_have_text("")


def test_claim_ten_takes_only_the_comments_the_filters_show(page: Page, site: Site) -> None:
    elsewhere = hold(site, 3)
    for number in range(2):
        site.post_comment(f"b{number}", CALM[number], article={"id": "a2"})
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(5)
    filters = page.get_by_role("form", name="Queue filters")
    filters.get_by_role("textbox", name="Article").fill("a2")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#items > li")).to_have_count(2)
    page.get_by_role("button", name="Claim 10").click()
    expect(page.locator(".claim.mine")).to_have_count(2)
    # Said after the list is read again, which would otherwise clear the words.
    expect(page.locator("#queue-message")).to_have_text(
        "You hold 2 comments; nobody else can decide them until the lease ends."
    )
    assert [site.comment(f"b{number}")["claimed_by_name"] for number in range(2)] == ["Mo"] * 2
    # The other article's comments, not shown, are left for the other moderators.
    assert [site.comment(comment_id).get("claimed_by") for comment_id in elsewhere] == [None] * 3
    page.get_by_role("button", name="Release mine").click()
    expect(page.locator(".claim.mine")).to_have_count(0)
    expect(page.locator("#queue-message")).to_have_text("Released 2 comments.")


def test_claim_ten_with_an_article_and_a_reason_takes_that_articles_comments_of_that_reason(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 2)
    ids = [f"b{number}" for number in range(3)]
    for number, comment_id in enumerate(ids):
        site.post_comment(comment_id, CALM[number], article={"id": "a2"})
    # Reopened with a reason: held for TOXIC alone, its article's other comments for PREMOD.
    for action, extra in (("approve", {}), ("reopen", {"reason": "TOXIC"})):
        status, body = service.call(
            "POST", f"/v1/sites/{site.id}/comments/b1/decision", {"action": action, **extra}
        )
        assert status == 200, body
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(5)
    filters = page.get_by_role("form", name="Queue filters")
    filters.get_by_role("textbox", name="Article").fill("a2")
    filters.get_by_label("Reason").select_option("TOXIC")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#items > li")).to_have_count(1)
    page.get_by_role("button", name="Claim 10").click()
    expect(page.locator(".claim.mine")).to_have_count(1)
    expect(page.locator("#queue-message")).to_have_text(
        "You hold 1 comment; nobody else can decide it until the lease ends."
    )
    assert [site.comment(comment_id).get("claimed_by_name") for comment_id in ids] == [
        None,
        "Mo",
        None,
    ]
    # The listing is asked for both filters, not one filtered here.
    assert any("/queue?" in url and "article=a2" in url and "reason=TOXIC" in url for url in asked)


def claims_sent(page: Page) -> list[Request]:
    """Every queue claim the page sends from now on, in order."""
    sent: list[Request] = []
    page.on(
        "request",
        lambda request: sent.append(request) if request.url.endswith("/queue/claim") else None,
    )
    return sent


def claimed_by_mo(site: Site) -> list[str]:
    return [
        comment_id
        for comment_id in site.queue_ids()
        if site.comment(comment_id).get("claimed_by_name") == "Mo"
    ]


def test_each_claim_ten_sends_a_key_of_its_own_whose_replay_leases_nothing_more(
    page: Page, site: Site
) -> None:
    hold(site, 12)
    sent = claims_sent(page)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(12)
    with page.expect_response(re.compile(r"/queue/claim$")) as answered:
        page.get_by_role("button", name="Claim 10").click()
    expect(page.locator(".claim.mine")).to_have_count(10)
    [first] = sent
    key = first.all_headers().get("idempotency-key")
    assert key
    # The same request sent again, as a proxy or the browser sends one again after a dropped
    # connection: the first answer, and nothing more leased.
    replayed = page.request.post(
        first.url,
        headers={
            "Authorization": f"Bearer {site.tokens['Mo']}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
        data=first.post_data_buffer,
    )
    assert replayed.status == 200, replayed.text()
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.body() == answered.value.body()
    first_batch = [item["id"] for item in answered.value.json()["items"]]
    assert sorted(claimed_by_mo(site)) == sorted(first_batch)
    # The next press is another claim, with a key of its own: it takes the two left.
    page.get_by_role("button", name="Claim 10").click()
    expect(page.locator(".claim.mine")).to_have_count(12)
    assert len(sent) == 2
    assert sent[1].all_headers().get("idempotency-key") not in (None, key)


def test_claim_ten_pressed_again_after_its_answer_was_lost_gets_that_batch_not_another(
    page: Page, site: Site
) -> None:
    hold(site, 12)
    sent = claims_sent(page)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(12)

    def lose_the_answer(route: Route) -> None:
        route.fetch()
        route.abort("connectionreset")

    # The service leases the first press's batch, but its answer never reaches the browser.
    page.route(re.compile(r"/queue/claim$"), lose_the_answer, times=1)
    page.get_by_role("button", name="Claim 10").click()
    expect(page.locator("#queue-message")).to_have_text(
        "The service cannot be reached. Check your connection and try again."
    )
    leased = claimed_by_mo(site)
    assert len(leased) == 10
    page.get_by_role("button", name="Claim 10").click()
    expect(page.locator("#queue-message")).to_have_text(
        "You hold 10 comments; nobody else can decide them until the lease ends."
    )
    expect(page.locator(".claim.mine")).to_have_count(10)
    # The batch the lost answer held, not a second one: the other two are left to the others.
    assert claimed_by_mo(site) == leased
    keys = [request.all_headers().get("idempotency-key") for request in sent]
    assert len(keys) == 2
    assert keys[0]
    assert keys[0] == keys[1]


def test_hostile_comments_are_shown_as_inert_text(
    context: BrowserContext, service: Service, site: Site
) -> None:
    for comment_id, text in HOSTILE.items():
        site.post_comment(comment_id, text)
    dialogs: list[str] = []
    elsewhere: list[str] = []
    page = context.new_page()

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)

    def record(request: Request) -> None:
        if not request.url.startswith(service.url):
            elsewhere.append(request.url)

    page.on("request", record)
    page.goto(f"{service.url}/console")
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(len(HOSTILE))
    for comment_id, text in HOSTILE.items():
        shown = page.locator(f'#items > li[data-id="{comment_id}"] .text')
        assert shown.text_content() == text
    assert page.locator("#items script, #items img, #items a").count() == 0
    page.locator('#items > li[data-id="link"]').get_by_role("button", name="A reader").click()
    page.mouse.wheel(0, 20_000)
    assert dialogs == []
    assert elsewhere == []
    overflow = page.evaluate(
        "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )
    assert overflow <= 0
    # The override stays inside the comment: the text after it is not reversed.
    meta = page.locator('#items > li[data-id="rtl"] .meta').first
    assert meta.evaluate("node => getComputedStyle(node).direction") == "ltr"
    box = page.locator('#items > li[data-id="long"]').bounding_box()
    assert box is not None
    assert box["width"] <= 1100


def test_a_phone_sized_viewport_still_works(browser: Browser, service: Service, site: Site) -> None:
    hold(site, 2)
    phone = browser.new_context(viewport={"width": 360, "height": 740}, has_touch=True)
    try:
        page = phone.new_page()
        page.goto(f"{service.url}/console")
        signed_in(page, site)
        expect(page.locator("#items > li")).to_have_count(2)
        first = items(page)[0]
        page.locator("#items > li").first.get_by_role("button", name="Approve").tap()
        expect(page.locator("#items > li")).to_have_count(1)
        assert site.comment(first)["state"] == "approved"
        overflow = page.evaluate(
            "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
        )
        assert overflow <= 0
        screenshot(page, "queue-phone")
    finally:
        phone.close()


def test_browse_shows_history_with_the_old_text_and_reopens(page: Page, site: Site) -> None:
    hold(site, 2)
    site.service.call("POST", f"/v1/sites/{site.id}/comments/c00/decision", {"action": "reject"})
    site.post_comment("c01", "Edited: the part about the negotiations was new to me.")
    site.service.call("POST", f"/v1/sites/{site.id}/comments/c01/decision", {"action": "approve"})
    signed_in(page, site)
    page.get_by_role("button", name="Browse").click()
    expect(page.locator("#browse-message")).to_have_text("1 approved comment.")
    approved = page.locator('#browse-items > li[data-id="c01"]')
    expect(approved.locator(".article")).to_have_text("a1")
    approved.get_by_role("button", name="History").click()
    expect(approved.locator(".history li")).to_have_count(3)
    expect(approved.locator(".old-text")).to_contain_text(CALM[1])
    expect(approved.locator(".history li").last).to_contain_text("admin · approve")
    page.get_by_label("State").select_option("rejected")
    page.get_by_role("button", name="Show").click()
    rejected = page.locator('#browse-items > li[data-id="c00"]')
    rejected.get_by_role("button", name="Back to pending").click()
    expect(rejected.locator(".item-message")).to_have_text("Back in the pending queue.")
    assert site.comment("c00")["state"] == "pending"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_of_the_queue_and_an_item(
    browser: Browser, service: Service, site: Site, scheme: str
) -> None:
    site.post_comment("p1", "You are an idiot and everyone who agrees with you is a moron.")
    site.post_comment("p2", "Cheap pills, best offer, visit http://pills.example now!!!")
    site.post_comment("p3", CALM[0])
    shot = browser.new_context(
        viewport={"width": 1100, "height": 800},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    try:
        page = shot.new_page()
        page.goto(f"{service.url}/console")
        signed_in(page, site)
        expect(page.locator("#items > li")).to_have_count(3)
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == ("rgb(255, 255, 255)" if scheme == "light" else "rgb(19, 20, 24)")
        assert page.locator("mark.ev").count() > 0
        screenshot(page, f"queue-{scheme}")
        page.locator("#items > li").first.get_by_role("button", name="A reader").click()
        expect(page.locator(".author")).to_contain_text("pending 1")
        page.locator("#items > li").first.screenshot(path=str(screenshot(page, f"item-{scheme}")))
    finally:
        shot.close()


def test_the_admin_adds_a_moderator_and_sees_policy_errors_in_words(
    page: Page, service: Service, site: Site
) -> None:
    sign_in(page, service.admin_token)
    expect(page.locator("#who-name")).to_have_text("admin")
    page.get_by_label("Site", exact=True).select_option(site.id)
    expect(page.locator("#live")).to_have_text("live")
    page.get_by_role("button", name="Site admin").click()
    expect(page.locator("#moderators tbody tr")).to_have_count(1)
    page.locator("#add-moderator").get_by_label("Name").fill("Carol")
    page.get_by_role("button", name="Add moderator").click()
    expect(page.locator("#moderators-message")).to_contain_text("Token for Carol (shown once")
    expect(page.locator("#moderators-message code")).to_have_count(1)
    token = page.locator("#moderators-message code").text_content()
    assert token is not None
    assert service.call("GET", "/v1/me", token=token)[1]["name"] == "Carol"
    expect(page.locator("#moderators tbody tr")).to_have_count(2)
    page.get_by_role("button", name="Revoke Mo").click()
    expect(page.locator("#moderators-message")).to_have_text(
        "Mo is revoked: the token no longer works."
    )
    expect(page.locator("#moderators tbody tr")).to_have_count(1)
    assert service.call("GET", "/v1/me", token=site.tokens["Mo"])[0] == 401
    page.get_by_label("Policy (JSON; fields given replace the site's)").fill(
        '{"max_links": -1, "mode": "sometimes"}'
    )
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("#policy-message")).to_contain_text("The policy was not saved:")
    expect(page.locator("#policy-message li")).to_have_count(2)
    page.get_by_role("button", name="Rotate webhook secret").click()
    expect(page.locator("#secrets-message")).to_contain_text("New webhook secret (shown once)")


def test_the_admin_view_drops_a_list_and_policy_of_the_site_shown_before(
    page: Page, service: Service, site: Site
) -> None:
    other = new_site(service)
    site.add_moderator("Zed")
    status, body = service.call("PATCH", f"/v1/sites/{site.id}", {"policy": {"max_links": 7}})
    assert status == 200, body
    sign_in(page, service.admin_token)
    expect(page.locator("#who-name")).to_have_text("admin")
    picker = page.get_by_label("Site", exact=True)
    picker.select_option(site.id)
    expect(page.locator("#live")).to_have_text("live")
    # The first site's moderators and policy are slow to answer.
    held: list[Route] = []
    page.route(
        re.compile(rf"/v1/sites/{re.escape(site.id)}(/moderators)?$"),
        lambda route: held.append(route),
    )
    page.get_by_role("button", name="Site admin").click()
    waits_for(page, held, "the admin view never asked for the site", 2)
    picker.select_option(other.id)
    expect(page.locator("#live")).to_have_text("live")
    page.get_by_role("button", name="Site admin").click()
    rows = page.locator("#moderators tbody tr")
    expect(rows).to_have_count(1)
    expect(page.locator("#policy")).to_have_value(re.compile('"max_links": 2'))
    # The late answers are dropped: shown, they would replace these.
    with admin_loads_back(page, len(held)):
        for route in held:
            route.continue_()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Mo")
    assert '"max_links": 7' not in page.locator("#policy").input_value()


def test_a_comment_held_while_the_event_stream_connects_appears(page: Page, site: Site) -> None:
    hold(site, 1)
    waiting: list[Route] = []
    page.route(re.compile(r"/events$"), lambda route: waiting.append(route))
    signed_in(page, site)
    waits_for(page, waiting, "the console never asked for its event stream")
    # Held while the stream's request is on its way (a slow network).
    site.post_comment("late", "A late reader asks whether the talks will be streamed.")
    waiting[0].continue_()
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator('#items > li[data-id="late"]')).to_be_visible()
    expect(page.locator("#items > li")).to_have_count(2)


# Keeps each thing the queue's notice says, in order, in `window.said`.
QUEUE_SAID = """() => {
    const node = document.getElementById("queue-message");
    window.said = [];
    new MutationObserver(() => {
        if (node.textContent) window.said.push(node.textContent);
    }).observe(node, { childList: true, characterData: true, subtree: true });
}"""


def test_a_live_comment_outside_the_filters_stays_out_of_the_queue_unsaid(
    page: Page, site: Site
) -> None:
    site.post_comment("spam1", CALM[0], author="spammer")
    signed_in(page, site)
    expect(page.locator("#live")).to_have_text("live")
    filters = page.get_by_role("form", name="Queue filters")
    filters.locator("input[name=author]").fill("spammer")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#items > li")).to_have_count(1)
    page.evaluate(QUEUE_SAID)
    with page.expect_response(re.compile(r"/comments/innocent$")):
        site.post_comment("innocent", CALM[1], author="regular")
    site.post_comment("spam2", CALM[2], author="spammer")
    # The earlier comment was read before the later one was posted, and handled with its answer.
    expect(page.locator('#items > li[data-id="spam2"]')).to_be_visible()
    status, listed = site.service.call("GET", f"/v1/sites/{site.id}/queue?author=spammer")
    assert status == 200, listed
    assert sorted(items(page)) == ["spam1", "spam2"]
    assert items(page) == [item["id"] for item in listed["items"]]
    # Only what the moderator is shown is said: a busy site's other comments would otherwise
    # talk over every other notice.
    expect(page.locator("#queue-message")).to_have_text("New comment spam2 arrived.")
    assert page.evaluate("window.said") == ["New comment spam2 arrived."]


def test_a_cards_button_decides_that_card_whatever_is_selected(page: Page, site: Site) -> None:
    hold(site, 3)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    first, _, third = items(page)
    page.locator("#items > li").nth(0).get_by_role("checkbox").check()
    page.locator("#items > li").nth(2).get_by_role("button", name="Spam").click()
    expect(page.locator(f'#items > li[data-id="{third}"]')).to_have_count(0)
    assert (site.comment(first)["state"], site.comment(third)["state"]) == ("pending", "spam")
    # The keys still decide the selection.
    page.keyboard.press("a")
    expect(page.locator(f'#items > li[data-id="{first}"]')).to_have_count(0)
    assert site.comment(first)["state"] == "approved"


def test_undo_is_forgotten_on_another_site_and_on_sign_out(
    page: Page, service: Service, site: Site
) -> None:
    other = new_site(service)
    hold(site, 1)
    # Hosts number comments per site: the other site has a c00 too, approved.
    hold(other, 1)
    status, _ = service.call(
        "POST", f"/v1/sites/{other.id}/comments/c00/decision", {"action": "approve"}
    )
    assert status == 200
    decisions: list[str] = []
    page.on(
        "request",
        lambda request: (
            decisions.append(request.url)
            if request.method == "POST" and "/decision" in request.url
            else None
        ),
    )
    sign_in(page, service.admin_token)
    expect(page.locator("#who-name")).to_have_text("admin")
    page.get_by_label("Site", exact=True).select_option(site.id)
    expect(page.locator("#items > li")).to_have_count(1)
    page.keyboard.press("a")
    expect(page.locator("#toast-text")).to_have_text("Approved comment c00.")
    page.get_by_label("Site", exact=True).select_option(other.id)
    expect(page.locator("#toast")).to_be_hidden()
    page.keyboard.press("u")
    # A request sent after the key: an undo would have gone before it.
    with page.expect_response(re.compile(r"/comments\?")):
        page.get_by_role("button", name="Browse").click()
    assert [url for url in decisions if "/decisions" in url] == []
    assert other.comment("c00")["state"] == "approved"


def reported(site: Site) -> str:
    """A published comment its readers reported into the reported queue."""
    (comment_id,) = hold(site, 1)
    status, _ = site.service.call(
        "POST", f"/v1/sites/{site.id}/comments/{comment_id}/decision", {"action": "approve"}
    )
    assert status == 200
    for reader in range(3):  # the default report threshold
        site.report(comment_id, f"reader-{reader}")
    assert site.comment(comment_id)["reasons"] == ["REPORTED"]
    return comment_id


def test_the_reported_tab_drops_a_comment_another_moderator_decided(
    page: Page, service: Service, site: Site
) -> None:
    comment_id = reported(site)
    site.add_moderator("Alice")
    signed_in(page, site)
    page.get_by_role("tab", name=re.compile("Reported")).click()
    expect(page.locator("#items > li")).to_have_count(1)
    expect(page.locator("#live")).to_have_text("live")
    status, _ = service.call(
        "POST",
        f"/v1/sites/{site.id}/comments/{comment_id}/decision",
        {"action": "reject"},
        token=site.tokens["Alice"],
    )
    assert status == 200
    expect(page.locator("#items > li")).to_have_count(0)
    expect(page.locator("#queue-message")).to_have_text(f"Alice decided {comment_id} (rejected).")


def test_the_reported_tab_follows_comments_entering_and_leaving_it_without_a_decision(
    page: Page, site: Site
) -> None:
    comment_id = reported(site)
    signed_in(page, site)
    page.get_by_role("tab", name=re.compile("Reported")).click()
    expect(page.locator("#items > li")).to_have_count(1)
    expect(page.locator("#live")).to_have_text("live")

    # The site edits it: moderated afresh, it leaves the reported queue (held, on this site).
    site.post_comment(comment_id, f"{CALM[1]} (edited)")
    expect(page.locator("#items > li")).to_have_count(0)
    expect(page.locator("#queue-message")).to_have_text(
        f"Comment {comment_id} was edited on the site and left this queue (now pending)."
    )
    expect(page.locator('[data-count="reported"]')).to_have_text("0")

    # Another one reaches the report threshold: listed as the count shows it.
    (other,) = hold(site, 1, prefix="d")
    status, _ = site.service.call(
        "POST", f"/v1/sites/{site.id}/comments/{other}/decision", {"action": "approve"}
    )
    assert status == 200
    for reader in range(3):
        site.report(other, f"reader-{reader}")
    expect(page.locator("#items > li")).to_have_count(1)
    assert items(page) == [other]
    expect(page.locator('[data-count="reported"]')).to_have_text("1")


def test_a_decisions_own_live_event_before_its_answer_leaves_the_undo_to_the_answer(
    page: Page, site: Site
) -> None:
    comment_id = reported(site)
    # The decision reaches the service, whose answer is held back: its live event comes first.
    # Routed before the page works: once, a route added just before the key press let the
    # decision through.
    held: list[tuple[Route, APIResponse]] = []
    page.route(re.compile(r"/decision$"), lambda route: held.append((route, route.fetch())))
    signed_in(page, site)
    page.get_by_role("tab", name=re.compile("Reported")).click()
    expect(page.locator("#items > li")).to_have_count(1)
    page.keyboard.press("s")
    # The live event read: the counts it asks for say the reported queue is empty.
    expect(page.locator('[data-count="reported"]')).to_have_text("0")
    assert page.locator("#items > li").count() == 1
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(page.locator("#items > li")).to_have_count(0)
    page.keyboard.press("u")
    expect(page.locator("#queue-message")).to_have_text(
        "Undone: approved again, and its reports are cleared."
    )
    assert site.comment(comment_id)["state"] == "approved"


def test_a_reload_landing_before_a_decisions_answer_leaves_the_comment_to_the_answer(
    page: Page, site: Site
) -> None:
    comment_id = reported(site)
    # The event stream is slow to answer, and the Reported tab, picked meanwhile, is shown before
    # the opening reads the queue again with the stream following.
    streams: list[Route] = []
    page.route(re.compile(r"/events$"), lambda route: streams.append(route), times=1)
    signed_in(page, site)
    page.get_by_role("tab", name=re.compile("Reported")).click()
    expect(page.locator("#items > li")).to_have_count(1)
    waits_for(page, streams, "the console never asked for its event stream")
    reloads: list[Route] = []
    page.route(re.compile(r"/queue\?"), lambda route: reloads.append(route), times=1)
    streams[0].continue_()
    waits_for(page, reloads, "the opening never read the queue again")
    # The decision reaches the service while that reload loads; its answer is held back.
    held: list[tuple[Route, APIResponse]] = []
    page.route(re.compile(r"/decision$"), lambda route: held.append((route, route.fetch())))
    page.keyboard.press("s")
    waits_for(page, held, "the decision was never sent")
    # The reload's page, read after the decision, no longer lists the comment.
    reloads[0].continue_()
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    expect(page.locator('[data-count="reported"]')).to_have_text("0")
    assert items(page) == [comment_id]
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(page.locator("#items > li")).to_have_count(0)
    expect(page.locator("#toast-text")).to_have_text(f"Marked as spam comment {comment_id}.")
    page.keyboard.press("u")
    expect(page.locator("#queue-message")).to_have_text(
        "Undone: approved again, and its reports are cleared."
    )
    assert site.comment(comment_id)["state"] == "approved"


def test_undo_in_the_reported_tab_says_the_reports_are_cleared(page: Page, site: Site) -> None:
    comment_id = reported(site)
    signed_in(page, site)
    page.get_by_role("tab", name=re.compile("Reported")).click()
    expect(page.locator("#items > li")).to_have_count(1)
    page.keyboard.press("s")
    expect(page.locator("#items > li")).to_have_count(0)
    page.keyboard.press("u")
    expect(page.locator("#queue-message")).to_have_text(
        "Undone: approved again, and its reports are cleared."
    )
    assert site.comment(comment_id)["state"] == "approved"


def test_browse_shows_only_the_list_asked_for_last_and_each_page_once(
    page: Page, site: Site
) -> None:
    hold(site, 52)
    status, body = site.service.call(
        "POST", f"/v1/sites/{site.id}/comments/c51/decision", {"action": "approve"}
    )
    assert status == 200, body
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(50)
    listing = re.compile(r"/comments\?")
    late: list[Route] = []

    def hold_first(route: Route) -> None:
        if late:
            route.continue_()
        else:
            late.append(route)

    page.route(listing, hold_first)
    # Approved asked for, then Pending before its answer came: the approved page is dropped.
    with page.expect_request(listing):
        page.get_by_role("button", name="Browse").click()
    filters = page.get_by_role("form", name="Browse filters")
    filters.get_by_label("State").select_option("pending")
    filters.get_by_role("button", name="Show").click()
    expect(page.locator("#browse-message")).to_have_text("51 pending comments.")
    shown = page.locator("#browse-items > li")
    expect(shown).to_have_count(50)
    with page.expect_response(listing) as answered:
        late[0].continue_()
    answered.value.finished()
    page.unroute(listing)

    # More pressed twice before its page came asks for it once.
    held: list[Route] = []
    page.route(listing, lambda route: held.append(route))
    more = page.get_by_role("button", name="More")
    with page.expect_request(listing):
        more.click()
    more.click()
    with page.expect_response(listing) as answered:
        held[0].continue_()
    answered.value.finished()
    assert len(held) == 1
    expect(more).to_be_hidden()
    expect(shown).to_have_count(51)
    # Neither the approved c51 nor a page twice.
    ids = [str(node.get_attribute("data-id")) for node in shown.all()]
    assert sorted(ids) == [f"c{number:02d}" for number in range(51)]
    expect(page.locator("#browse-message")).to_have_text("51 pending comments.")


def test_more_pressed_while_a_filter_reload_loads_waits_for_it_and_never_mixes_the_lists(
    page: Page, site: Site
) -> None:
    hold(site, 52)
    other = [f"b{number}" for number in range(3)]
    for comment_id in other:
        site.post_comment(comment_id, CALM[1], article={"id": "a2"})
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(50)
    more = page.locator("#queue-more")
    expect(more).to_be_visible()
    asked: list[str] = []
    held: list[Route] = []

    def hold_first(route: Route) -> None:
        asked.append(route.request.url)
        if held:
            route.continue_()
        else:
            held.append(route)

    listing = re.compile(r"/queue\?")
    page.route(listing, hold_first)
    filters = page.get_by_role("form", name="Queue filters")
    filters.get_by_role("textbox", name="Article").fill("a2")
    with page.expect_request(listing):
        filters.get_by_role("button", name="Apply").click()
    # More of the old list, pressed while the article's list is on its way.
    more.click(force=True)
    with page.expect_response(listing):
        held[0].continue_()
    expect(page.locator("#items > li")).to_have_count(3)
    assert sorted(items(page)) == other
    assert len(asked) == 1, asked
    expect(more).to_be_hidden()
    # Once the reload has landed, More works again.
    filters.get_by_role("textbox", name="Article").fill("")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#items > li")).to_have_count(50)
    more.click()
    expect(page.locator("#items > li")).to_have_count(55)


def test_browse_until_a_day_ends_at_its_local_midnight_across_a_clock_change(
    browser: Browser, service: Service, site: Site
) -> None:
    berlin = browser.new_context(timezone_id="Europe/Berlin")
    try:
        page = berlin.new_page()
        page.goto(f"{service.url}/console")
        signed_in(page, site)
        page.get_by_role("button", name="Browse").click()
        form = page.locator("#browse-filters")
        form.locator("input[name=since]").fill("2025-10-26")
        form.locator("input[name=until]").fill("2025-10-26")
        with page.expect_request(re.compile(r"/comments\?")) as asked:
            form.get_by_role("button", name="Show").click()
        # 26 October 2025 in Berlin is 25 hours long: 22:00Z the day before to 23:00Z.
        assert "since=2025-10-25T22%3A00%3A00.000Z" in asked.value.url
        assert "until=2025-10-26T23%3A00%3A00.000Z" in asked.value.url
    finally:
        berlin.close()


def test_a_site_picked_while_another_loads_shows_its_own_queue(
    page: Page, service: Service, site: Site
) -> None:
    other = new_site(service)
    hold(site, 1)
    hold(other, 2, prefix="o")
    held: list[Route] = []

    def hold_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(r"/queue\?"), hold_first)
    sign_in(page, service.admin_token)
    waits_for(page, held, "the console never read a queue")
    # The first site's queue is still loading when the moderator picks another site.
    picked = other if site.id in held[0].request.url else site
    page.get_by_label("Site", exact=True).select_option(picked.id)
    expect(page.locator("#items > li")).to_have_count(len(picked.queue_ids()))
    # The late page is dropped: shown, it would replace the list.
    with page_back(page):
        held[0].continue_()
    assert sorted(items(page)) == sorted(picked.queue_ids())


def test_typing_in_a_filter_while_another_moderator_decides_stays_in_the_filter(
    page: Page, service: Service, site: Site
) -> None:
    shown = hold(site, 3)
    site.add_moderator("Alice")
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    expect(page.locator("#live")).to_have_text("live")
    author = page.locator("#queue-filters").get_by_role("textbox", name="Author")
    author.click()
    page.keyboard.type("reader-")
    status, _ = service.call(
        "POST",
        f"/v1/sites/{site.id}/comments/{shown[0]}/decision",
        {"action": "approve"},
        token=site.tokens["Alice"],
    )
    assert status == 200
    expect(page.locator("#items > li")).to_have_count(2)
    # The rest of the name goes on into the filter: none of its letters is a shortcut now.
    page.keyboard.type("sara")
    expect(author).to_be_focused()
    expect(author).to_have_value("reader-sara")
    assert site.queue_ids() == shown[1:]


def test_a_key_pressed_while_another_site_opens_never_decides_the_old_sites_comment_there(
    page: Page, service: Service, site: Site
) -> None:
    other = new_site(service)
    hold(site, 1)
    hold(other, 1)
    sign_in(page, service.admin_token)
    first, second = site, other
    expect(page.locator("#live")).to_have_text("live")
    page.get_by_label("Site", exact=True).select_option(first.id)
    expect(page.locator("#items > li")).to_have_count(1)
    expect(page.locator("#items > li")).to_have_attribute("data-id", "c00")
    # The second site's opening is held back, as a slow answer would: the first site's comment
    # (the same id as one of the second's) must not stay on screen for the keys meanwhile.
    held: list[Route] = []
    page.route(re.compile(rf"/v1/sites/{second.id}/reasons"), lambda route: held.append(route))
    decisions: list[Request] = []
    page.on(
        "request", lambda request: decisions.append(request) if "/decision" in request.url else None
    )
    with page.expect_request(re.compile(rf"/v1/sites/{second.id}/reasons")):
        page.get_by_label("Site", exact=True).select_option(second.id)
    # A decision the key made would be asked for as the key is handled, before the second
    # site's queue, which is read only once its opening goes on.
    page.keyboard.press("a")
    with page.expect_request(re.compile(rf"/v1/sites/{second.id}/queue\?")):
        held[0].continue_()
    assert decisions == []
    expect(page.locator("#items > li")).to_have_count(1)
    assert second.queue_ids() == ["c00"]
    assert first.queue_ids() == ["c00"]


def test_a_comment_the_site_edits_shows_its_new_text_and_is_decided_as_edited(
    page: Page, site: Site
) -> None:
    hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.locator("#live")).to_have_text("live")
    edited = "The photo caption names the right city after all, sorry."
    site.post_comment("c00", edited, author="reader-c00")
    card = page.locator('#items > li[data-id="c00"]')
    expect(card.locator(".text")).to_have_text(edited)
    expect(page.locator("#queue-message")).to_have_text("Comment c00 was edited on the site.")
    version = site.comment("c00")["version"]
    card.get_by_role("button", name="Approve").click()
    expect(card).to_have_count(0)
    decided = site.comment("c00")
    assert (decided["state"], decided["version"]) == ("approved", version + 1)


def test_a_decision_on_a_comment_decided_meanwhile_says_so_and_takes_it_off_the_list(
    page: Page, service: Service, site: Site
) -> None:
    shown = hold(site, 2)
    site.add_moderator("Alice")
    # The event stream is down (a network hiccup): Alice's decision reaches the console only
    # through the conflict its own decision meets.
    page.route(re.compile(r"/events$"), lambda route: route.abort())
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    status, _ = service.call(
        "POST",
        f"/v1/sites/{site.id}/comments/{shown[0]}/decision",
        {"action": "reject", "reason": "TOXIC"},
        token=site.tokens["Alice"],
    )
    assert status == 200
    page.locator(f'#items > li[data-id="{shown[0]}"]').get_by_role("button", name="Approve").click()
    expect(page.locator("#queue-message")).to_contain_text(f"{shown[0]} is rejected now")
    assert items(page) == [shown[1]]
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", shown[1])
    assert site.comment(shown[0])["state"] == "rejected"


def test_a_second_press_while_the_first_decision_lands_says_nothing_of_a_conflict(
    page: Page, site: Site
) -> None:
    hold(site, 2)
    # No live event tells of the first decision before the second press: the stream is down.
    page.route(re.compile(r"/events$"), lambda route: route.abort())
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    first, other = items(page)
    page.evaluate(QUEUE_SAID)
    # The first decision is made, but its answer is slow to come back.
    held: list[tuple[Route, APIResponse]] = []

    def answer_first_late(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))

    page.route(re.compile(r"/decision$"), answer_first_late)
    page.keyboard.press("a")
    waits_for(page, held, "the first decision was never sent")
    with page.expect_response(re.compile(r"/decision$")) as second:
        page.keyboard.press("a")
    assert second.value.status == 409
    # The conflict has the comment read again, as it is now: approved, it leaves the list, and
    # whatever the second press says is given to the notice then, and written a frame after the
    # next.
    expect(page.locator("#items > li")).to_have_count(1)
    frames_drawn(page)
    assert page.evaluate("window.said") == []
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(page.locator("#toast-text")).to_have_text(f"Approved comment {first}.")
    frames_drawn(page)
    assert page.evaluate("window.said") == []
    expect(page.locator("#queue-message")).to_have_text("")
    assert items(page) == [other]
    assert site.comment(first)["state"] == "approved"


def test_a_site_deleted_under_the_admins_console_says_so_and_stops_reconnecting(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 1)
    page.clock.install()
    page.reload()
    streams: list[Request] = []
    page.on(
        "request", lambda request: streams.append(request) if "/events" in request.url else None
    )
    sign_in(page, service.admin_token)
    expect(page.locator("#live")).to_have_text("live")
    # Sites of the module's other tests share the service: the picker shows when there are any.
    if page.get_by_label("Site", exact=True).is_visible():
        page.get_by_label("Site", exact=True).select_option(site.id)
    expect(page.locator("#items > li")).to_have_count(1)
    expect(page.locator("#live")).to_have_text("live")
    opened = len(streams)
    assert service.call("DELETE", f"/v1/sites/{site.id}")[0] == 202
    expect(page.locator("#queue-message")).to_have_text(
        f"Site {site.id} no longer exists: it was deleted. Pick another site or reload the page."
    )
    expect(page.locator("#live")).not_to_have_text("live")
    # A minute of the page's time: a stream that can never open again is not asked for again.
    page.clock.run_for(60_000)
    expect(page.locator("#items > li")).to_have_count(0)
    # Browse reads the site's comments: asked for after any stream the minute's timers asked for.
    with page.expect_request(re.compile(rf"/v1/sites/{site.id}/comments\?")):
        page.get_by_role("button", name="Browse").click()
    assert len(streams) == opened


def test_an_event_stream_that_never_answers_is_given_up_and_the_queue_shows(
    page: Page, site: Site
) -> None:
    hold(site, 1)
    page.clock.install()
    page.reload()
    # The first stream's connection hangs without a byte (a half-open connection after the
    # laptop slept, a proxy holding the response): the console must not wait on it forever.
    held: list[Route] = []

    def hang_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(r"/events$"), hang_first)
    signed_in(page, site)
    waits_for(page, held, "the console never opened the event stream")
    page.clock.run_for(60_000)
    expect(page.locator("#items > li")).to_have_count(1)
    page.clock.run_for(5_000)
    expect(page.locator("#live")).to_have_text("live")
    site.post_comment("late", "A late reader asks whether the talks will be streamed.")
    expect(page.locator('#items > li[data-id="late"]')).to_be_visible()


def test_a_claim_whose_lease_ran_out_shows_the_comment_free_to_open(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 1)
    site.add_moderator("Alice")
    status, claimed = service.call(
        "POST",
        f"/v1/sites/{site.id}/queue/claim",
        {"limit": 1, "lease_seconds": 120},
        token=site.tokens["Alice"],
    )
    assert status == 200, claimed
    assert len(claimed["items"]) == 1, claimed
    page.clock.install()
    page.reload()
    signed_in(page, site)
    card = page.locator("#items > li").first
    expect(card.locator(".claim.theirs")).to_contain_text("Claimed by Alice")
    # Alice went away: her lease ends without an event (nothing releases it).
    page.clock.run_for(121_000)
    expect(card.locator(".claim")).to_have_count(0)


def test_a_lease_counts_down_by_the_services_clock_on_a_computer_whose_clock_is_off(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 1)
    site.add_moderator("Alice")
    status, claimed = service.call(
        "POST",
        f"/v1/sites/{site.id}/queue/claim",
        {"limit": 1, "lease_seconds": 300},
        token=site.tokens["Alice"],
    )
    assert status == 200, claimed
    assert len(claimed["items"]) == 1, claimed
    # The moderator's computer runs ten minutes fast.
    page.clock.install(time=time.time() + 600)
    page.reload()
    signed_in(page, site)
    claim = page.locator("#items > li").first.locator(".claim.theirs")
    expect(claim).to_contain_text(re.compile(r"Claimed by Alice · 4:[0-5]\d left"))


def test_a_decision_made_with_the_same_token_elsewhere_takes_the_comment_off_the_list(
    page: Page, service: Service, site: Site
) -> None:
    shown = hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.locator("#live")).to_have_text("live")
    # The same moderator in another tab (or a script with the same token) decides one.
    status, _ = service.call(
        "POST",
        f"/v1/sites/{site.id}/comments/{shown[0]}/decision",
        {"action": "approve"},
        token=site.tokens["Mo"],
    )
    assert status == 200
    expect(page.locator("#items > li")).to_have_count(1)
    assert items(page) == [shown[1]]


def test_a_claim_and_release_made_with_the_same_token_elsewhere_show_on_the_list(
    page: Page, service: Service, site: Site
) -> None:
    shown = hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.locator("#live")).to_have_text("live")
    card = page.locator(f'#items > li[data-id="{shown[0]}"]')
    # The same moderator opens a comment in another tab: here it is theirs, not free.
    status, claimed = service.call(
        "POST", f"/v1/sites/{site.id}/comments/{shown[0]}/claim", {}, token=site.tokens["Mo"]
    )
    assert status == 200, claimed
    expect(card.locator(".claim.mine")).to_contain_text(
        re.compile(r"Claimed by you · \d:\d\d left")
    )
    expect(card.get_by_role("button", name="Open")).to_have_count(0)
    # And gives it back there: free here too.
    status, released = service.call(
        "POST", f"/v1/sites/{site.id}/queue/release", {}, token=site.tokens["Mo"]
    )
    assert (status, released["released"]) == (200, [shown[0]])
    expect(card.locator(".claim")).to_have_count(0)
    expect(card.get_by_role("button", name="Open")).to_be_visible()


def test_a_right_to_left_article_title_leaves_the_date_after_it(page: Page, site: Site) -> None:
    title = "\u05d4\u05e9\u05d9\u05d7\u05d5\u05ea \u05d1\u05e7\u05d4\u05d9\u05e8"
    site.post_comment("rtl", CALM[0], article={"id": "a-he", "title": title})
    signed_in(page, site)
    meta = page.locator('#items > li[data-id="rtl"] p.meta')
    expect(meta.locator(".article")).to_have_text(title)
    # Where the text after the title starts on screen: in a left-to-right line it must be to the
    # right of the title, not pulled to its left by the title's direction.
    right, *lefts = page.evaluate(
        """(meta) => {
            const title = meta.querySelector('.article');
            const range = document.createRange();
            range.setStart(title.nextSibling, 0);
            range.setEnd(title.nextSibling.nextSibling, 4);
            const lefts = [...range.getClientRects()].map((rect) => rect.left);
            return [title.getBoundingClientRect().right, ...lefts];
        }""",
        meta.element_handle(),
    )
    assert lefts, right
    assert all(left >= right - 1 for left in lefts), (right, lefts)


def attach_evidence(
    service: Service,
    site: Site,
    comment_id: str,
    text: str,
    evidence: dict[str, list[tuple[int, int]]],
) -> bool:
    """The model's spans of ``text`` stored as the service stores them once worked out (on a
    thread of its own: Playwright's loop holds this one)."""
    kwargs = service.redis.connection_pool.connection_kwargs

    async def attach() -> bool:
        client = aioredis.Redis(
            host=kwargs["host"], port=kwargs["port"], db=kwargs["db"], decode_responses=True
        )
        try:
            text_hash = hashlib.sha256(text.encode()).hexdigest()
            now_ms = int(time.time() * 1000)
            return await Store(client).attach_evidence(
                site.id, comment_id, text_hash, evidence, now_ms
            )
        finally:
            await client.aclose()

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, attach()).result()


def test_evidence_worked_out_after_the_console_read_the_comment_is_marked_live(
    page: Page, service: Service, site: Site
) -> None:
    text = "You are a stupid idiot and everyone laughs at you."
    site.post_comment("rude", text)
    # Its evidence is worked out after the verdict: once it is stored, take it back out, as if
    # the console read the comment before the scorer had explained it.
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while not site.comment("rude")["evidence"]:
        assert time.monotonic() < deadline, "the comment's evidence was never stored"
        page.wait_for_timeout(50)
    service.redis.hset(KeySpace().comment(site.id, "rude"), "evidence", "")
    signed_in(page, site)
    card = page.locator('#items > li[data-id="rude"]')
    expect(card.locator(".text")).to_have_text(text)
    expect(page.locator("#live")).to_have_text("live")
    expect(card.locator("mark")).to_have_count(0)
    assert attach_evidence(service, site, "rude", text, {"insult": [(10, 16)]})
    expect(card.locator("mark")).to_have_text("stupid")
    expect(card.locator("mark")).to_have_attribute("title", re.compile(r"^insult \d+%$"))


def test_evidence_after_emoji_and_combining_marks_marks_the_words_written(
    page: Page, service: Service, site: Site
) -> None:
    # The service counts code points; a JavaScript string counts UTF-16 units, in which each of
    # these emoji is two.
    text = "\U0001f600\U0001f44d\U0001f3fd You are a stupid idiot, cafe\u0301 people."
    site.post_comment("rude", text)
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while not site.comment("rude")["evidence"]:
        assert time.monotonic() < deadline, "the comment's evidence was never stored"
        page.wait_for_timeout(50)
    stupid = text.index("stupid")
    cafe = text.index("cafe")
    spans = {"insult": [(stupid, stupid + 6)], "toxicity": [(cafe, cafe + 5)]}
    assert attach_evidence(service, site, "rude", text, spans)
    signed_in(page, site)
    card = page.locator('#items > li[data-id="rude"]')
    expect(card.locator(".text")).to_have_text(text)
    expect(card.locator("mark")).to_have_text(["stupid", "cafe\u0301"])


def test_an_open_author_panel_and_quoted_parent_stay_open_while_another_moderator_works(
    browser: Browser, service: Service, site: Site
) -> None:
    hold(site, 2)
    site.post_comment("reply", CALM[2], parent_id="c00")
    site.add_moderator("Alice")
    alice_context = browser.new_context()
    mo_context = browser.new_context()
    try:
        alice, mo = alice_context.new_page(), mo_context.new_page()
        for page, name in [(alice, "Alice"), (mo, "Mo")]:
            page.goto(f"{service.url}/console")
            signed_in(page, site, name)
            expect(page.locator("#items > li")).to_have_count(3)
            expect(page.locator("#live")).to_have_text("live")
        card = mo.locator('#items > li[data-id="reply"]')
        card.get_by_role("button", name="Show the comment it answers").click()
        expect(card.locator("blockquote.parent")).to_contain_text(CALM[0])
        card.get_by_role("button", name="A reader (reader-reply)").click()
        panel = card.get_by_role("region", name="Author")
        expect(panel.get_by_role("button", name="Ban")).to_be_visible()
        panel.get_by_role("button", name="Ban").focus()
        # Alice claims another comment: Mo's list is redrawn by the live event.
        other = alice.locator('#items > li[data-id="c01"]')
        other.get_by_role("button", name="Open").click()
        expect(mo.locator('#items > li[data-id="c01"] .claim.theirs')).to_contain_text("Alice")
        expect(panel.get_by_role("button", name="Ban")).to_be_visible()
        expect(panel.get_by_role("button", name="Ban")).to_be_focused()
        expect(card.locator("blockquote.parent")).to_contain_text(CALM[0])
    finally:
        alice_context.close()
        mo_context.close()


def test_a_comment_the_moderator_sends_back_to_pending_elsewhere_returns_to_the_queue(
    context: BrowserContext, service: Service, site: Site
) -> None:
    hold(site, 2)
    one, two = context.new_page(), context.new_page()
    for page in (one, two):
        page.goto(f"{service.url}/console")
        signed_in(page, site)
        expect(page.locator("#items > li")).to_have_count(2)
        expect(page.locator("#live")).to_have_text("live")
    first = items(one)[0]
    one.keyboard.press("a")
    expect(one.locator("#toast-text")).to_have_text(f"Approved comment {first}.")
    expect(two.locator("#items > li")).to_have_count(1)
    # Undone in the first tab: the second shows the comment again.
    one.keyboard.press("u")
    expect(one.locator("#queue-message")).to_have_text("Undone.")
    expect(two.locator(f'#items > li[data-id="{first}"]')).to_have_count(1)
    # Decided again, then sent back to pending from Browse in the second tab: its queue has it.
    one.keyboard.press("a")
    expect(one.locator("#toast-text")).to_have_text(f"Approved comment {first}.")
    expect(two.locator("#items > li")).to_have_count(1)
    two.get_by_role("button", name="Browse").click()
    reopened = two.locator(f'#browse-items > li[data-id="{first}"]')
    reopened.get_by_role("button", name="Back to pending").click()
    expect(reopened.locator(".item-message")).to_have_text("Back in the pending queue.")
    two.get_by_role("button", name="Queue").click()
    for page in (one, two):
        expect(page.locator(f'#items > li[data-id="{first}"]')).to_have_count(1)
        expect(page.locator("#items > li")).to_have_count(2)
    expect(two.locator("#queue-message")).to_have_text("")


def test_undo_pressed_while_a_decision_is_on_its_way_undoes_that_decision(
    page: Page, site: Site
) -> None:
    hold(site, 3)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    first, second, _ = items(page)
    page.keyboard.press("a")
    expect(page.locator("#toast-text")).to_have_text(f"Approved comment {first}.")
    # The next decision is made, but its answer is slow to come back.
    held: list[tuple[Route, APIResponse]] = []
    page.route(re.compile(r"/decision$"), lambda route: held.append((route, route.fetch())))
    page.keyboard.press("a")
    waits_for(page, held, "the decision was never sent")
    # The moderator takes it back at once: the undo is of this decision, not the one before.
    page.keyboard.press("u")
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(page.locator("#queue-message")).to_have_text("Undone.")
    expect(page.locator(f'#items > li[data-id="{second}"]')).to_have_count(1)
    expect(page.locator("#items > li")).to_have_count(2)
    assert site.comment(second)["state"] == "pending"
    assert site.comment(first)["state"] == "approved"
    expect(page.locator("#toast")).to_be_hidden()


def test_the_reported_tabs_page_landing_after_the_pending_tab_was_picked_again_stays_out(
    page: Page, site: Site
) -> None:
    comment_id = reported(site)
    held_ids = hold(site, 2, prefix="h")
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    # The reported queue is slow to answer, and the moderator goes back to the pending tab.
    slow: list[Route] = []
    page.route(re.compile(r"/queue\?queue=reported"), lambda route: slow.append(route))
    page.get_by_role("tab", name=re.compile("Reported")).click()
    waits_for(page, slow, "the reported queue was never asked for")
    with page.expect_response(re.compile(r"/queue\?queue=pending")):
        page.get_by_role("tab", name=re.compile("Pending")).click()
    with page.expect_response(re.compile(r"/queue\?queue=reported")):
        slow[0].continue_()
    expect(page.locator("#items > li")).to_have_count(2)
    assert sorted(items(page)) == sorted(held_ids)
    # A key decides a comment of the pending tab, never the reported one.
    page.keyboard.press("a")
    expect(page.locator("#items > li")).to_have_count(1)
    assert site.comment(comment_id)["reasons"] == ["REPORTED"]


def test_a_comment_clicked_or_tabbed_into_is_the_one_the_keys_decide(
    page: Page, site: Site
) -> None:
    hold(site, 3)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    top, middle, bottom = items(page)
    # Clicked to read it: the keys act on it, not on the comment marked before.
    page.locator(f'#items > li[data-id="{bottom}"] .text').click()
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", bottom)
    page.keyboard.press("a")
    expect(page.locator("#items > li")).to_have_count(2)
    assert site.comment(bottom)["state"] == "approved"
    assert site.comment(top)["state"] == "pending"
    # Tabbed to one of its buttons: likewise.
    page.locator(f'#items > li[data-id="{middle}"]').get_by_role("button", name="Reject").focus()
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", middle)
    page.keyboard.press("s")
    expect(page.locator("#items > li")).to_have_count(1)
    assert site.comment(middle)["state"] == "spam"
    assert site.comment(top)["state"] == "pending"


def test_the_keys_work_on_a_comments_checkbox_reached_with_tab(page: Page, site: Site) -> None:
    hold(site, 3)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    top, middle, _ = items(page)
    page.locator(f'#items > li[data-id="{top}"]').get_by_role("button", name="Spam").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("checkbox", name=f"Select comment {middle}")).to_be_focused()
    page.keyboard.press("x")
    expect(page.locator("#selection")).to_have_text("1 selected")
    page.keyboard.press("s")
    expect(page.locator("#items > li")).to_have_count(2)
    assert site.comment(middle)["state"] == "spam"
    assert site.comment(top)["state"] == "pending"


def test_the_comment_it_answers_opened_by_keyboard_keeps_the_focus_on_its_card(
    page: Page, site: Site
) -> None:
    hold(site, 1)
    site.post_comment("reply", CALM[2], parent_id="c00")
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    card = page.locator('#items > li[data-id="reply"]')
    card.get_by_role("button", name="Show the comment it answers").focus()
    page.keyboard.press("Enter")
    quote = card.locator("blockquote.parent")
    expect(quote).to_contain_text(CALM[0])
    # The button it replaced had the focus: the quote takes it, not the top of the page.
    expect(quote).to_be_focused()
    page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="Open")).to_be_focused()


def test_the_author_button_says_whether_its_panel_is_open(page: Page, site: Site) -> None:
    hold(site, 1)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(1)
    expect(page.locator("#live")).to_have_text("live")
    card = page.locator('#items > li[data-id="c00"]')
    name = "A reader (reader-c00)"
    expect(card.get_by_role("button", name=name, expanded=False)).to_be_visible()
    card.get_by_role("button", name=name).click()
    panel = card.get_by_role("region", name="Author")
    expect(panel.get_by_role("button", name="Ban")).to_be_visible()
    expect(card.get_by_role("button", name=name, expanded=True)).to_be_visible()
    # A live event redraws the list: the panel stays open, and the button still says so.
    site.post_comment("c01", CALM[1])
    expect(page.locator("#items > li")).to_have_count(2)
    expect(card.get_by_role("button", name=name, expanded=True)).to_be_visible()
    card.get_by_role("button", name=name).click()
    expect(card.get_by_role("region", name="Author")).to_have_count(0)
    expect(card.get_by_role("button", name=name, expanded=False)).to_be_visible()


def test_signing_in_by_keyboard_puts_the_keyboard_on_the_queue(page: Page, site: Site) -> None:
    hold(site, 1)
    page.get_by_label("Token").focus()
    page.keyboard.type(site.tokens["Mo"])
    page.keyboard.press("Enter")
    expect(page.locator("#items > li")).to_have_count(1)
    # The token field is hidden: the keyboard goes on at the page's main part, not its top.
    expect(page.get_by_role("main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("tab", name=re.compile("^Pending"))).to_be_focused()


def test_the_undo_toast_never_hides_the_control_tabbed_to_at_twice_the_zoom(
    page: Page, site: Site
) -> None:
    hold(site, 5)
    # 1100 by 900 pixels at 200%: 550 by 450 CSS pixels.
    page.set_viewport_size({"width": 550, "height": 450})
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(5)
    page.keyboard.press("a")
    expect(page.locator("#items > li")).to_have_count(4)
    expect(page.get_by_role("button", name="Undo")).to_be_visible()
    covered = """() => {
        const shown = document.activeElement.getBoundingClientRect();
        const toast = document.getElementById("toast").getBoundingClientRect();
        return shown.bottom > toast.top && shown.top < toast.bottom
            && shown.right > toast.left && shown.left < toast.right;
    }"""
    page.get_by_role("checkbox", name=re.compile("^Select comment")).first.focus()
    tabbed = []
    while not page.evaluate("document.activeElement.closest('#toast') !== null"):
        label = page.evaluate(
            "(node => node.textContent || node.ariaLabel)(document.activeElement)"
        )
        assert not page.evaluate(covered), f"{label} is under the toast"
        tabbed.append(label)
        page.keyboard.press("Tab")
    assert tabbed.count("Spam") == 4
    expect(page.get_by_role("button", name="Undo")).to_be_focused()


CONTRAST = """([node, surface]) => {
    const luminance = (colour) => {
        const [r, g, b] = colour.match(/[\\d.]+/g).slice(0, 3).map((value) => {
            const channel = Number(value) / 255;
            return channel <= 0.03928 ? channel / 12.92 : ((channel + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [light, dark] = [
        luminance(getComputedStyle(node).borderTopColor),
        luminance(getComputedStyle(surface).backgroundColor),
    ].sort((a, b) => b - a);
    return (light + 0.05) / (dark + 0.05);
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_edges_of_fields_and_buttons_stand_out_from_the_page(
    page: Page, site: Site, scheme: Literal["light", "dark"]
) -> None:
    hold(site, 1)
    page.emulate_media(color_scheme=scheme)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(1)
    body = page.locator("body").element_handle()
    bar = page.get_by_role("banner").element_handle()
    filters = page.get_by_role("form", name="Queue filters")
    card = page.locator("#items > li").first
    # A field's or a button's edge is all that shows where it is: 3:1 against what it sits on.
    for control, surface in [
        (filters.get_by_role("textbox", name="Article", exact=True), body),
        (filters.get_by_role("combobox", name="Order"), body),
        (page.get_by_role("button", name="Claim 10"), body),
        (card.get_by_role("button", name="Open"), body),
        (page.get_by_role("button", name="Sign out"), bar),
    ]:
        ratio = page.evaluate(CONTRAST, [control.element_handle(), surface])
        assert ratio >= 3, f"{control} edge {ratio:.2f}:1 in {scheme}"


def test_the_queue_tabs_move_with_the_arrow_keys_and_take_one_tab_stop(
    page: Page, site: Site
) -> None:
    hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    pending = page.get_by_role("tab", name=re.compile("^Pending"))
    reported = page.get_by_role("tab", name=re.compile("^Reported"))
    # One stop for the tab list: Tab goes from the picked tab to the filters.
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Tab")
    expect(pending).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("combobox", name="Order")).to_be_focused()
    pending.focus()
    page.keyboard.press("ArrowRight")
    expect(reported).to_be_focused()
    expect(reported).to_have_attribute("aria-selected", "true")
    expect(pending).to_have_attribute("aria-selected", "false")
    expect(page.locator("#queue-message")).to_have_text(
        "Nothing to moderate in reported. Well done."
    )
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Sign out")).to_be_focused()
    page.keyboard.press("Tab")
    expect(reported).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(pending).to_be_focused()
    expect(pending).to_have_attribute("aria-selected", "true")
    expect(page.locator("#items > li")).to_have_count(2)


def test_a_button_tabbed_to_keeps_the_keyboard_when_a_live_event_redraws_the_list(
    page: Page, site: Site
) -> None:
    hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.locator("#live")).to_have_text("live")
    card = page.locator('#items > li[data-id="c01"]')
    card.get_by_role("button", name="Reject").focus()
    site.post_comment("late", "A late reader asks whether the talks will be streamed.")
    expect(page.locator('#items > li[data-id="late"]')).to_be_visible()
    # The card is drawn again: its Reject button has the keyboard still, and Tab goes on from it.
    expect(card.get_by_role("button", name="Reject")).to_be_focused()
    page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="Spam")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#items > li")).to_have_count(2)
    assert site.comment("c01")["state"] == "spam"


def test_the_last_comment_decided_from_its_button_leaves_the_keyboard_on_the_queue(
    page: Page, site: Site
) -> None:
    hold(site, 1)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(1)
    page.locator("#items > li").first.get_by_role("button", name="Approve").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#queue-message")).to_have_text(
        "Nothing to moderate in pending. Well done."
    )
    # Its card, and the button with it, are gone: the keyboard stays in the page's main part.
    expect(page.get_by_role("main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("tab", name=re.compile("^Pending"))).to_be_focused()


def test_single_key_shortcuts_can_be_turned_off_and_the_choice_is_remembered(
    page: Page, site: Site
) -> None:
    hold(site, 3)
    decided: list[str] = []
    page.on(
        "request",
        lambda request: (
            decided.append(request.url.split("/")[-2])
            if request.method == "POST" and request.url.endswith("/decision")
            else None
        ),
    )
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    top, middle, _ = items(page)
    shortcuts = page.get_by_role("checkbox", name="Single-key shortcuts")
    expect(shortcuts).to_be_checked()
    approve = page.locator(f'#items > li[data-id="{middle}"]').get_by_role("button", name="Approve")
    expect(approve).to_have_attribute("aria-keyshortcuts", "a")
    # Reached with Tab and turned off with Space.
    page.get_by_role("button", name="Keys").focus()
    page.keyboard.press("Tab")
    expect(shortcuts).to_be_focused()
    page.keyboard.press("Space")
    expect(shortcuts).not_to_be_checked()
    expect(approve).not_to_have_attribute("aria-keyshortcuts", "a")
    # The letters do nothing now; a card's own buttons still work from the keyboard.
    page.locator(f'#items > li[data-id="{top}"] .text').click()
    page.keyboard.press("x")
    page.keyboard.press("a")
    expect(page.locator("#selection")).to_have_text("")
    approve.focus()
    with page.expect_response(lambda response: response.url.endswith(f"{middle}/decision")):
        page.keyboard.press("Enter")
    expect(page.locator("#items > li")).to_have_count(2)
    # Requests are seen in the order sent: the `a` pressed before would have come first.
    assert decided == [middle]
    assert site.comment(top)["state"] == "pending"
    # The choice is this browser's: a reload keeps it.
    page.reload()
    expect(page.locator("#items > li")).to_have_count(2)
    expect(shortcuts).not_to_be_checked()
    page.keyboard.press("a")
    expect(page.locator("#toast")).to_be_hidden()
    # Turned on again: `a` approves the comment marked.
    shortcuts.click()
    expect(shortcuts).to_be_checked()
    page.keyboard.press("a")
    expect(page.locator("#items > li")).to_have_count(1)
    assert decided == [middle, top]
    assert site.comment(top)["state"] == "approved"


def test_single_key_shortcuts_turned_off_in_one_tab_show_off_in_the_others(
    page: Page, context: BrowserContext, service: Service, site: Site
) -> None:
    hold(site, 1)
    other = context.new_page()
    other.goto(f"{service.url}/console")
    for tab in (page, other):
        signed_in(tab, site)
        expect(tab.locator("#items > li")).to_have_count(1)
    shortcuts = [tab.get_by_role("checkbox", name="Single-key shortcuts") for tab in (page, other)]
    approve = other.locator("#items > li").get_by_role("button", name="Approve")
    expect(approve).to_have_attribute("aria-keyshortcuts", "a")
    shortcuts[0].click()
    # The other tab's keys stop at once (the choice is the browser's): it says so too.
    expect(shortcuts[1]).not_to_be_checked()
    expect(approve).not_to_have_attribute("aria-keyshortcuts", "a")
    shortcuts[1].click()
    expect(shortcuts[0]).to_be_checked()
    expect(page.locator("#items > li").get_by_role("button", name="Approve")).to_have_attribute(
        "aria-keyshortcuts", "a"
    )


def test_the_toast_and_a_cards_message_are_live_regions_there_before_their_words(
    page: Page, site: Site
) -> None:
    hold(site, 2)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.locator("#live")).to_have_text("live")
    # Both are in the page, empty, and announced as status regions before anything is said.
    toast = page.get_by_role("status").and_(page.locator("#toast-text"))
    message = page.get_by_role("status").and_(
        page.locator('#items > li[data-id="c00"] .item-message')
    )
    for region in (toast, message):
        expect(region).to_have_count(1)
        expect(region).to_have_text("")
        expect(region).to_have_attribute("aria-live", "polite")
    toast_node = toast.element_handle()
    message_node = message.element_handle()
    same = "([node, selector]) => node.isConnected && node === document.querySelector(selector)"
    # A live event redraws the list: the card's message area is the same element still.
    site.post_comment("late", CALM[2])
    expect(page.locator('#items > li[data-id="late"]')).to_be_visible()
    assert page.evaluate(same, [message_node, '#items > li[data-id="c00"] .item-message'])
    # Words are written into the regions that were there.
    page.locator('#items > li[data-id="c00"]').get_by_role("button", name="Open").click()
    expect(message).to_have_text("Yours while the lease lasts: nobody else can decide it.")
    assert page.evaluate(same, [message_node, '#items > li[data-id="c00"] .item-message'])
    page.locator('#items > li[data-id="c01"]').get_by_role("button", name="Approve").click()
    expect(toast).to_have_text("Approved comment c01.")
    assert page.evaluate(same, [toast_node, "#toast-text"])
    assert page.evaluate(same, [message_node, '#items > li[data-id="c00"] .item-message'])
    expect(message).to_have_text("Yours while the lease lasts: nobody else can decide it.")
    # The author's panel says what its buttons did in its own status region, there before.
    card = page.locator('#items > li[data-id="c00"]')
    card.get_by_role("button", name="A reader (reader-c00)").click()
    panel = card.get_by_role("region", name="Author")
    expect(panel.get_by_role("button", name="Trust")).to_be_visible()
    said = panel.get_by_role("status")
    expect(said).to_have_text("")
    said_node = said.element_handle()
    panel.get_by_role("button", name="Trust").click()
    expect(said).to_have_text("Status set to trusted.")
    assert page.evaluate(same, [said_node, '#items > li[data-id="c00"] .author [role=status]'])


def test_a_ban_of_an_author_already_banned_says_so_and_what_this_press_rejected(
    page: Page, site: Site
) -> None:
    for comment_id, text in [("c00", CALM[0]), ("c01", CALM[1])]:
        site.post_comment(comment_id, text, author="troll")
    site.post_comment("c02", CALM[2])
    # Another moderator banned the author, rejecting both held comments; one came back since.
    status, banned = site.service.call(
        "POST",
        f"/v1/sites/{site.id}/authors/troll/status",
        {"status": "banned", "reject_pending": True},
    )
    assert status == 200, banned
    assert sorted(banned["rejected"]) == ["c00", "c01"]
    reopen = {"action": "reopen"}
    status, _ = site.service.call("POST", f"/v1/sites/{site.id}/comments/c01/decision", reopen)
    assert status == 200
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)

    def ban(reject_held: bool) -> None:
        card = page.locator('#items > li[data-id="c01"]')
        card.get_by_role("button", name="A reader (troll)").click()
        panel = card.get_by_role("region", name="Author")
        panel.get_by_role("checkbox", name="reject held comments").set_checked(reject_held)
        panel.get_by_role("button", name="Ban").click()

    # This press rejects the one held comment; the answer lists the earlier one too.
    ban(reject_held=True)
    expect(page.locator("#items > li")).to_have_count(1)
    expect(page.get_by_role("status").and_(page.locator("#queue-message"))).to_have_text(
        "Already banned; 1 held comment rejected now, 2 by the ban in all."
    )

    # Not asked to reject: nothing is, whatever the standing ban rejected before.
    status, _ = site.service.call("POST", f"/v1/sites/{site.id}/comments/c01/decision", reopen)
    assert status == 200
    expect(page.locator("#items > li")).to_have_count(2)
    ban(reject_held=False)
    said = page.locator('#items > li[data-id="c01"] .author').get_by_role("status")
    expect(said).to_have_text(
        "Already banned; none rejected now (the ban had rejected 2 held comments)."
    )
    expect(page.locator("#items > li")).to_have_count(2)


def test_a_ban_says_which_held_comments_it_left_as_another_moderator_holds_them(
    page: Page, site: Site
) -> None:
    for number in range(3):
        site.post_comment(f"c0{number}", CALM[number], author="troll")
    bob = site.add_moderator("Bob")
    claimed = site.service.call("POST", f"/v1/sites/{site.id}/comments/c01/claim", {}, token=bob)
    assert claimed[0] == 200, claimed
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    card = page.locator('#items > li[data-id="c01"]')
    card.get_by_role("button", name="A reader (troll)").click()
    panel = card.get_by_role("region", name="Author")
    panel.get_by_role("checkbox", name="reject held comments").check()
    panel.get_by_role("button", name="Ban").click()
    # The ban rejects the two comments nobody holds; Bob's stays held, and the moderator is told.
    expect(page.locator("#items > li")).to_have_count(1)
    expect(panel.get_by_role("status")).to_have_text(
        "Status set to banned; 2 held comments rejected. "
        "1 held comment not rejected (claimed by Bob): still in the queue."
    )
    assert site.comment("c01")["state"] == "pending"
    assert site.comment("c00")["state"] == "rejected"


def test_a_comment_arriving_live_while_a_reload_loads_keeps_its_place_in_the_order(
    page: Page, site: Site
) -> None:
    hold(site, 3)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    expect(page.locator("#live")).to_have_text("live")
    # The reload for the longest waiting first is held back until the new comment is shown.
    held: list[Route] = []
    page.route(re.compile(r"/queue\?"), lambda route: held.append(route))
    page.locator("#queue-filters").get_by_label("Order").select_option("oldest")
    with page.expect_request(re.compile(r"/queue\?")):
        page.locator("#queue-filters").get_by_role("button", name="Apply").click()
    site.post_comment("late", "A late reader asks whether the talks will be streamed.")
    expect(page.locator('#items > li[data-id="late"]')).to_be_visible()
    held[0].continue_()
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    # The newest comment waits least: last, as the listing has it, not above the page.
    assert site.queue_ids() == ["c00", "c01", "c02", "late"]
    expect(page.locator("#items > li")).to_have_count(4)
    assert items(page) == ["c00", "c01", "c02", "late"]


def test_the_tabs_oldest_age_grows_as_the_cards_waiting_time_does(page: Page, site: Site) -> None:
    hold(site, 1)
    page.clock.install()
    page.reload()
    signed_in(page, site)
    tab = page.locator("[data-age=pending]")
    waited = page.locator("#items > li").first.locator(".waiting")
    expect(tab).to_have_text(re.compile(r"^ · oldest \d+s$"))
    # Nothing happens in the queue for three minutes: its oldest comment still ages.
    page.clock.run_for(180_000)
    expect(waited).to_have_text("waiting 3m")
    expect(tab).to_have_text(" · oldest 3m")


def test_a_page_load_logs_no_error_and_asks_for_nothing_it_does_not_get(
    context: BrowserContext, service: Service, site: Site
) -> None:
    hold(site, 1)
    page = context.new_page()
    errors: list[str] = []
    failed: list[str] = []
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    icons: list[str] = []
    page.on(
        "response",
        lambda response: (
            icons.append(f"{response.status} {response.headers['content-type']}")
            if response.url.endswith("/console/icon.svg")
            else None
        ),
    )
    page.goto(f"{service.url}/console")
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(1)
    expect(page.locator("#live")).to_have_text("live")
    # A request sent after the page's own: anything the load asked for has been answered.
    with page.expect_response(re.compile(r"/comments\?")):
        page.get_by_role("button", name="Browse").click()
    assert errors == []
    assert failed == []
    # The page's own icon, allowed by its Content-Security-Policy as it stands.
    assert icons == ["200 image/svg+xml"]


def test_another_moderators_bulk_decision_is_said_once_for_all_its_comments(
    page: Page, context: BrowserContext, service: Service, site: Site
) -> None:
    hold(site, 6)
    site.add_moderator("Alice")
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(6)
    expect(page.locator("#live")).to_have_text("live")
    page.evaluate(QUEUE_SAID)
    alice = context.new_page()
    alice.goto(f"{service.url}/console")
    signed_in(alice, site, "Alice")
    expect(alice.locator("#items > li")).to_have_count(6)
    shown = items(alice)
    for comment_id in shown[:4]:
        alice.locator(f'#items > li[data-id="{comment_id}"]').get_by_role("checkbox").check()
    alice.get_by_role("button", name="Approve selected").click()
    expect(alice.locator("#items > li")).to_have_count(2)
    # Four events, one notice: each would otherwise replace the last, leaving only the fourth.
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.locator("#queue-message")).to_have_text("Alice decided 4 comments (approved).")
    # A few are named, in the order they were decided.
    for comment_id in shown[4:]:
        alice.locator(f'#items > li[data-id="{comment_id}"]').get_by_role("checkbox").check()
    alice.get_by_role("button", name="Spam selected").click()
    expect(page.locator("#items > li")).to_have_count(0)
    named = f"Alice decided {shown[4]} and {shown[5]} (spam)."
    expect(page.locator("#queue-message")).to_have_text(named)
    assert page.evaluate("window.said") == ["Alice decided 4 comments (approved).", named]
    assert [site.comment(comment_id)["state"] for comment_id in shown] == ["approved"] * 4 + [
        "spam"
    ] * 2


def test_a_reload_read_before_another_moderators_decision_does_not_bring_the_comment_back(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 2)
    site.add_moderator("Alice")
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    expect(page.locator("#live")).to_have_text("live")
    # The reload's page is read at once, before the decision, and lands after its live event.
    held: list[tuple[Route, APIResponse]] = []
    page.route(re.compile(r"/queue\?"), lambda route: held.append((route, route.fetch())))
    page.locator("#queue-filters").get_by_role("button", name="Apply").click()
    waits_for(page, held, "the reload never read the queue")
    status, _ = service.call(
        "POST",
        f"/v1/sites/{site.id}/comments/c00/decision",
        {"action": "approve"},
        token=site.tokens["Alice"],
    )
    assert status == 200
    expect(page.locator('#items > li[data-id="c00"]')).to_have_count(0)
    route, listed = held[0]
    assert sorted(item["id"] for item in listed.json()["items"]) == ["c00", "c01"]
    route.fulfill(response=listed)
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    assert items(page) == ["c01"]


def test_what_happens_before_the_event_streams_first_connection_succeeds_is_shown(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 2)
    site.add_moderator("Alice")
    # The stream's first connection fails before naming its starting point; the queue is read
    # meanwhile, and the reconnect is held back until the queue has changed.
    waiting = first_stream_connection_fails(page)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(2)
    waits_for(page, waiting, "the console never reconnected its event stream")
    status, _ = service.call(
        "POST",
        f"/v1/sites/{site.id}/comments/c00/decision",
        {"action": "approve"},
        token=site.tokens["Alice"],
    )
    assert status == 200
    site.post_comment("late", "A late reader asks whether the talks will be streamed.")
    waiting[0].continue_()
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator('#items > li[data-id="late"]')).to_be_visible()
    expect(page.locator('#items > li[data-id="c00"]')).to_have_count(0)
    assert sorted(items(page)) == ["c01", "late"]


def test_news_of_a_comment_that_left_while_a_reload_loaded_is_said_after_its_page_lands(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 3)
    site.add_moderator("Alice")
    live_queue(page, site, 3)
    # The page's time stands still: what live events say is still gathered when the page lands.
    page.clock.pause_at(time.time() + 1)
    page.evaluate(QUEUE_SAID)
    held: list[tuple[Route, APIResponse]] = []
    page.route(re.compile(r"/queue\?"), lambda route: held.append((route, route.fetch())))

    def decided_by_alice(comment_id: str) -> None:
        status, _ = service.call(
            "POST",
            f"/v1/sites/{site.id}/comments/{comment_id}/decision",
            {"action": "approve"},
            token=site.tokens["Alice"],
        )
        assert status == 200
        expect(page.locator(f'#items > li[data-id="{comment_id}"]')).to_have_count(0)

    # A reload's page read before Alice's decision lands after its live event, and before what
    # the event says is said; a comment arriving meanwhile is one of the list it shows.
    page.locator("#queue-filters").get_by_role("button", name="Apply").click()
    waits_for(page, held, "the reload never read the queue")
    decided_by_alice("c00")
    site.post_comment("late", "A late reader asks whether the talks will be streamed.")
    expect(page.locator('#items > li[data-id="late"]')).to_be_visible()
    route, listed = held[0]
    route.fulfill(response=listed)
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    assert sorted(items(page)) == ["c01", "c02", "late"]
    page.clock.run_for(1_000)
    expect(page.locator("#queue-message")).to_have_text("Alice decided c00 (approved).")
    # Said before the next reload's page lands, it stays said.
    page.locator("#queue-filters").get_by_role("button", name="Apply").click()
    waits_for(page, held, "the second reload never read the queue", 2)
    decided_by_alice("c01")
    page.clock.run_for(1_000)
    expect(page.locator("#queue-message")).to_have_text("Alice decided c01 (approved).")
    route, listed = held[1]
    route.fulfill(response=listed)
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    assert sorted(items(page)) == ["c02", "late"]
    expect(page.locator("#queue-message")).to_have_text("Alice decided c01 (approved).")
    assert page.evaluate("window.said") == [
        "Alice decided c00 (approved).",
        "Alice decided c01 (approved).",
    ]


def approved_by(service: Service, site: Site, comment_id: str, name: str) -> None:
    status, body = service.call(
        "POST",
        f"/v1/sites/{site.id}/comments/{comment_id}/decision",
        {"action": "approve"},
        token=site.tokens[name],
    )
    assert status == 200, body


def said_once(page: Page, words: str) -> list[str]:
    """What the queue's notice said (QUEUE_SAID), once the action's `words` are found said
    exactly once: a screen reader hears words said twice twice."""
    said: list[str] = page.evaluate("window.said")
    assert sum(text.count(words) for text in said) == 1, said
    return said


@pytest.mark.parametrize("pause", ["after_the_words", "before_the_words_are_written"])
@pytest.mark.parametrize("action", ["claim", "release", "undo", "ban"])
def test_an_actions_words_are_said_once_and_the_news_gathered_while_its_reload_loaded_after_them(
    page: Page, service: Service, site: Site, action: str, pause: str
) -> None:
    hold(site, 3)
    site.add_moderator("Alice")
    live_queue(page, site, 3)
    card = page.locator('#items > li[data-id="c02"]')
    if action == "claim":
        # Alice holds the comment she decides while the claim's reload loads.
        status, _ = service.call(
            "POST", f"/v1/sites/{site.id}/comments/c00/claim", {}, token=site.tokens["Alice"]
        )
        assert status == 200
        expect(page.locator(".claim.theirs")).to_have_count(1)
        button = page.get_by_role("button", name="Claim 10")
        words = "You hold 2 comments; nobody else can decide them until the lease ends."
    elif action == "release":
        card.get_by_role("button", name="Open").click()
        expect(card.locator(".claim.mine")).to_have_count(1)
        button = page.get_by_role("button", name="Release mine")
        words = "Released 1 comment."
    elif action == "undo":
        card.get_by_role("button", name="Approve").click()
        expect(page.locator("#toast-text")).to_have_text("Approved comment c02.")
        button = page.get_by_role("button", name="Undo")
        words = "Undone."
    else:
        card.get_by_role("button", name="A reader (reader-c02)").click()
        panel = card.get_by_role("region", name="Author")
        panel.get_by_role("checkbox", name="reject held comments").check()
        button = panel.get_by_role("button", name="Ban")
        words = "Status set to banned; 1 held comment rejected."
    # The page's time stands still: Alice's decision, made while the action's reload loads, is
    # still gathered when its page lands.
    page.clock.pause_at(time.time() + 1)
    page.evaluate(QUEUE_SAID)
    held: list[tuple[Route, APIResponse]] = []
    page.route(re.compile(r"/queue\?"), lambda route: held.append((route, route.fetch())))
    button.click()
    waits_for(page, held, "the action's reload never read the queue")
    approved_by(service, site, "c00", "Alice")
    expect(page.locator('#items > li[data-id="c00"]')).to_have_count(0)
    news = "Alice decided c00 (approved)."
    route, listed = held[0]
    if pause == "after_the_words":
        route.fulfill(response=listed)
        expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
        # The action's words at once, and the news on its own, after them, once Alice's events
        # pause.
        page.clock.run_for(100)
        expect(page.locator("#queue-message")).to_have_text(words)
        page.clock.run_for(1_000)
        expect(page.locator("#queue-message")).to_have_text(news)
        assert said_once(page, words) == [words, news]
    else:
        # Alice's events pause 1 ms after the page lands, before the action's words are written
        # (a frame after the next): the words and the news are said together, the words first.
        page.clock.run_for(499)
        route.fulfill(response=listed)
        expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
        page.clock.run_for(100)
        told = f"{words} {news}"
        expect(page.locator("#queue-message")).to_have_text(told)
        assert said_once(page, words) == [told]
    assert "c00" not in items(page)


@pytest.mark.parametrize("news", [False, True])
def test_an_actions_words_still_waiting_for_their_frame_are_said_when_more_lands(
    page: Page, service: Service, site: Site, news: bool
) -> None:
    hold(site, 51)
    site.add_moderator("Alice")
    live_queue(page, site, 50)
    card = page.locator('#items > li[data-id="c02"]')
    card.get_by_role("button", name="Open").click()
    expect(card.locator(".claim.mine")).to_have_count(1)
    # The page's time stands still: the release's words wait for their frame (announce writes
    # them a frame after the next) while More's page comes.
    page.clock.pause_at(time.time() + 1)
    page.evaluate(QUEUE_SAID)
    more = page.locator("#queue-more")
    page.get_by_role("button", name="Release mine").click()
    expect(card.locator(".claim.mine")).to_have_count(0)
    expect(more).not_to_have_attribute("aria-disabled", "true")
    words = "Released 1 comment."
    told = "Alice decided c00 (approved)."
    if news:
        # Alice's decision, still gathered when More's page lands, is said once its events pause.
        approved_by(service, site, "c00", "Alice")
        expect(page.locator('#items > li[data-id="c00"]')).to_have_count(0)
    with page_back(page):
        more.click()
    expect(page.locator("#items > li")).to_have_count(50 if news else 51)
    page.clock.run_for(100)
    expect(page.locator("#queue-message")).to_have_text(words)
    if news:
        page.clock.run_for(1_000)
        expect(page.locator("#queue-message")).to_have_text(told)
    assert said_once(page, words) == ([words, told] if news else [words])


def test_an_actions_words_still_waiting_for_their_frame_come_before_an_empty_tabs_words(
    page: Page, site: Site
) -> None:
    hold(site, 3)
    live_queue(page, site, 3)
    card = page.locator('#items > li[data-id="c02"]')
    card.get_by_role("button", name="Open").click()
    expect(card.locator(".claim.mine")).to_have_count(1)
    page.clock.pause_at(time.time() + 1)
    page.evaluate(QUEUE_SAID)
    page.get_by_role("button", name="Release mine").click()
    expect(card.locator(".claim.mine")).to_have_count(0)
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    # The Reported tab, picked before the release's words are written, lands empty.
    with page_back(page):
        page.get_by_role("tab", name=re.compile("Reported")).click()
    expect(page.locator("#items > li")).to_have_count(0)
    page.clock.run_for(100)
    told = "Released 1 comment. Nothing to moderate in reported. Well done."
    expect(page.locator("#queue-message")).to_have_text(told)
    assert said_once(page, "Released 1 comment.") == [told]


def test_news_said_while_an_actions_reload_loaded_is_said_again_after_the_actions_words(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 3)
    site.add_moderator("Alice")
    live_queue(page, site, 3)
    card = page.locator('#items > li[data-id="c02"]')
    card.get_by_role("button", name="Open").click()
    expect(card.locator(".claim.mine")).to_have_count(1)
    page.clock.pause_at(time.time() + 1)
    page.evaluate(QUEUE_SAID)
    held: list[tuple[Route, APIResponse]] = []
    page.route(re.compile(r"/queue\?"), lambda route: held.append((route, route.fetch())))
    page.get_by_role("button", name="Release mine").click()
    waits_for(page, held, "the release's reload never read the queue")
    approved_by(service, site, "c00", "Alice")
    page.clock.run_for(1_000)
    expect(page.locator("#queue-message")).to_have_text("Alice decided c00 (approved).")
    route, listed = held[0]
    route.fulfill(response=listed)
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    page.clock.run_for(100)
    told = "Released 1 comment. Alice decided c00 (approved)."
    expect(page.locator("#queue-message")).to_have_text(told)
    assert said_once(page, "Released 1 comment.") == ["Alice decided c00 (approved).", told]
    assert sorted(items(page)) == ["c01", "c02"]


def test_a_reconnect_that_could_not_resume_reads_the_queue_again_keeping_the_selection(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 3)
    site.add_moderator("Alice")
    # The stream's first connection fails before naming its starting point, and the reconnect
    # is held back while the moderator selects and Alice decides one of the selected comments.
    waiting = first_stream_connection_fails(page)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    first, kept, decided = items(page)
    waits_for(page, waiting, "the console never reconnected its event stream")
    for comment_id in (kept, decided):
        page.locator(f'#items > li[data-id="{comment_id}"]').get_by_role("checkbox").check()
    expect(page.locator("#selection")).to_have_text("2 selected")
    page.keyboard.press("k")
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", kept)
    status, _ = service.call(
        "POST",
        f"/v1/sites/{site.id}/comments/{decided}/decision",
        {"action": "approve"},
        token=site.tokens["Alice"],
    )
    assert status == 200
    with page.expect_response(re.compile(r"/queue\?")):
        waiting[0].continue_()
    expect(page.locator(f'#items > li[data-id="{decided}"]')).to_have_count(0)
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    # The comment still in the queue stays selected, and focused; the one Alice decided left
    # with its card.
    expect(page.locator("#selection")).to_have_text("1 selected")
    expect(page.locator(f'#items > li[data-id="{kept}"]').get_by_role("checkbox")).to_be_checked()
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", kept)
    page.get_by_role("button", name="Approve selected").click()
    expect(page.locator("#items > li")).to_have_count(1)
    assert site.comment(kept)["state"] == "approved"
    assert site.comment(first)["state"] == "pending"


def test_a_reconnect_that_could_not_resume_reads_again_the_cards_more_had_added(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 55)
    site.add_moderator("Alice")
    waiting = first_stream_connection_fails(page)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(50)
    page.get_by_role("button", name="More").click()
    expect(page.locator("#items > li")).to_have_count(55)
    expect(page.get_by_role("button", name="More")).to_be_hidden()
    shown = items(page)
    # A card More added is selected and has the keys; Alice decides one of the first page.
    last = shown[-1]
    page.locator(f'#items > li[data-id="{last}"]').get_by_role("checkbox").check()
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", last)
    waits_for(page, waiting, "the console never reconnected its event stream")
    approved_by(service, site, shown[0], "Alice")
    with page.expect_response(re.compile(r"/queue\?")):
        waiting[0].continue_()
    expect(page.locator(f'#items > li[data-id="{shown[0]}"]')).to_have_count(0)
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    # Every card but Alice's is still shown, the selected one selected and focused, and More,
    # with nothing left to add, stays hidden.
    assert items(page) == shown[1:]
    expect(page.locator("#selection")).to_have_text("1 selected")
    expect(page.locator(f'#items > li[data-id="{last}"]').get_by_role("checkbox")).to_be_checked()
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", last)
    expect(page.get_by_role("button", name="More")).to_be_hidden()


def test_a_reconnect_that_could_not_resume_reads_the_queue_again_keeping_the_cards_messages(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 3)
    site.add_moderator("Alice")
    waiting = first_stream_connection_fails(page)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    # Alice holds c01, unseen while the stream is down: Mo's approval of it is a conflict, said
    # on its card; Mo opens c02, which says so on its own.
    status, _ = service.call(
        "POST", f"/v1/sites/{site.id}/comments/c01/claim", {}, token=site.tokens["Alice"]
    )
    assert status == 200
    theirs = page.locator('#items > li[data-id="c01"]')
    mine = page.locator('#items > li[data-id="c02"]')
    theirs.get_by_role("button", name="Approve").click()
    conflict = "Someone else is on it: Alice holds this comment"
    expect(theirs.locator(".item-message")).to_contain_text(conflict)
    mine.get_by_role("button", name="Open").click()
    opened = "Yours while the lease lasts: nobody else can decide it."
    expect(mine.locator(".item-message")).to_have_text(opened)
    waits_for(page, waiting, "the console never reconnected its event stream")
    with page.expect_response(re.compile(r"/queue\?")):
        waiting[0].continue_()
    # The queue read again shows Alice's claim, and both cards keep what they said.
    expect(theirs.locator(".claim.theirs")).to_have_count(1)
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    expect(theirs.locator(".item-message")).to_contain_text(conflict)
    expect(mine.locator(".item-message")).to_have_text(opened)
    assert sorted(items(page)) == ["c00", "c01", "c02"]


@pytest.mark.parametrize("change", ["emptied", "filled", "neither"])
def test_the_queue_read_again_after_a_reconnect_says_if_the_list_became_empty_or_no_longer_is(
    page: Page, service: Service, site: Site, change: str
) -> None:
    site.add_moderator("Alice")
    if change != "filled":
        hold(site, 1 if change == "emptied" else 2)
    waiting = first_stream_connection_fails(page)
    signed_in(page, site)
    clear = "Nothing to moderate in pending. Well done."
    if change == "filled":
        expect(page.locator("#queue-message")).to_have_text(clear)
    elif change == "neither":
        expect(page.locator("#items > li")).to_have_count(2)
        page.get_by_role("button", name="Claim 10").click()
        held = "You hold 2 comments; nobody else can decide them until the lease ends."
        expect(page.locator("#queue-message")).to_have_text(held)
    else:
        expect(page.locator("#items > li")).to_have_count(1)
        expect(page.locator("#queue-message")).to_have_text("")
    page.evaluate(QUEUE_SAID)
    waits_for(page, waiting, "the console never reconnected its event stream")
    # Unseen while the stream is down: the list's only comment decided, or a new one held.
    if change == "emptied":
        approved_by(service, site, "c00", "Alice")
    else:
        site.post_comment("late", "A late reader asks whether the talks will be streamed.")
    with page.expect_response(re.compile(r"/queue\?")):
        waiting[0].continue_()
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    if change == "emptied":
        expect(page.locator("#items > li")).to_have_count(0)
        expect(page.locator("#queue-message")).to_have_text(clear)
        assert page.evaluate("window.said") == [clear]
    elif change == "filled":
        expect(page.locator('#items > li[data-id="late"]')).to_be_visible()
        expect(page.locator("#queue-message")).to_have_text("")
    else:
        expect(page.locator('#items > li[data-id="late"]')).to_be_visible()
        expect(page.locator("#queue-message")).to_have_text(held)
        assert page.evaluate("window.said") == []


def test_a_reload_asked_for_while_the_queue_is_read_again_after_a_reconnect_starts_afresh(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 3)
    site.add_moderator("Alice")
    waiting = first_stream_connection_fails(page)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    second = page.locator("#items > li").nth(1)
    second_id = str(second.get_attribute("data-id"))
    second.get_by_role("checkbox").check()
    second.get_by_role("button", name="Open").click()
    expect(second.locator(".item-message")).not_to_be_empty()
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", second_id)
    # The reading again after the reconnect is read at once and held back; the moderator's
    # reload, asked for meanwhile, goes through.
    held: list[tuple[Route, APIResponse]] = []

    def hold_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))

    page.route(re.compile(r"/queue\?"), hold_first)
    waits_for(page, waiting, "the console never reconnected its event stream")
    waiting[0].continue_()
    waits_for(page, held, "the reconnect never read the queue again")
    expect(page.locator("#live")).to_have_text("live")
    # Followed now: Alice's claim shows live, and the page held back does not have it.
    status, _ = service.call(
        "POST", f"/v1/sites/{site.id}/comments/c00/claim", {}, token=site.tokens["Alice"]
    )
    assert status == 200
    expect(page.locator(".claim.theirs")).to_have_count(1)
    page.locator("#queue-filters").get_by_role("button", name="Apply").click()
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    # The reload asked for starts afresh: no selection, the keys on the first comment, no
    # card's message.
    expect(page.locator("#selection")).to_have_text("")
    expect(page.locator("#items > li").first).to_have_class(re.compile(r"\bfocused\b"))
    expect(second.locator(".item-message")).to_be_empty()
    # The page read again before it, landing after it, is dropped: Alice's claim stays shown.
    route, listed = held[0]
    with page_back(page):
        route.fulfill(response=listed)
    expect(page.locator(".claim.theirs")).to_have_count(1)
    expect(page.locator("#selection")).to_have_text("")
    expect(page.locator("#items > li").first).to_have_class(re.compile(r"\bfocused\b"))


def test_the_queue_read_again_after_a_reconnect_lands_as_the_reload_asked_for_before_it(
    page: Page, service: Service, site: Site
) -> None:
    hold(site, 3)
    site.add_moderator("Alice")
    waiting = first_stream_connection_fails(page)
    signed_in(page, site)
    expect(page.locator("#items > li")).to_have_count(3)
    page.get_by_role("button", name="Claim 10").click()
    words = "You hold 3 comments; nobody else can decide them until the lease ends."
    expect(page.locator("#queue-message")).to_have_text(words)
    page.locator("#items > li").first.focus()
    page.keyboard.press("j")
    page.keyboard.press("j")
    shown = items(page)
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", shown[2])
    # The moderator's reload is read at once and held back; the reading again after the
    # reconnect, asked for after it, goes through.
    held: list[tuple[Route, APIResponse]] = []

    def hold_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))

    page.route(re.compile(r"/queue\?"), hold_first)
    page.locator("#queue-filters").get_by_role("button", name="Apply").click()
    waits_for(page, held, "the reload never read the queue")
    waits_for(page, waiting, "the console never reconnected its event stream")
    # Released and decided unseen while the stream is down.
    status, _ = service.call(
        "POST", f"/v1/sites/{site.id}/queue/release", {}, token=site.tokens["Mo"]
    )
    assert status == 200
    approved_by(service, site, shown[1], "Alice")
    with page.expect_response(re.compile(r"/queue\?")):
        waiting[0].continue_()
    expect(page.locator(f'#items > li[data-id="{shown[1]}"]')).to_have_count(0)
    expect(page.locator("#queue-more")).not_to_have_attribute("aria-disabled", "true")
    # Landing in place of the moderator's reload, it starts the list afresh as that one would:
    # the keys on the first comment, and the notice's words of before the reload gone.
    expect(page.locator("#items > li.focused")).to_have_attribute("data-id", shown[0])
    expect(page.locator("#queue-message")).to_have_text("")
    expect(page.locator(".claim.mine")).to_have_count(0)
    # The moderator's page, read before Alice's decision and the release, is dropped.
    route, listed = held[0]
    with page_back(page):
        route.fulfill(response=listed)
    assert items(page) == [shown[0], shown[2]]
    expect(page.locator(".claim.mine")).to_have_count(0)
