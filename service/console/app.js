// The moderator console: sign in, clear the queue, browse decided comments, administer a site.
// Everything here goes through the public API (api.js); nothing is rendered as markup.

import { ApiError, follow, get, idempotencyKey, post, query, serviceNow, session, whenSignedOut } from "./api.js";
import { age, announce, articleLink, chips, countdown, counted, el, evidenceText, scoreBars, unsaid, when } from "./render.js";
import { showAdmin } from "./admin.js";

// The reasons the API accepts when the site publishes no list of its own.
const FALLBACK_REASONS = ["TOXIC", "SPAM", "OFF_TOPIC", "INSULT", "THREAT", "IDENTITY_ATTACK", "PERSONAL_INFO", "OTHER"];
// The reasons held comments carry, which the queue filters by, when the API does not list them.
const FALLBACK_HOLDS = ["TOXIC", "SPAM", "LINKS", "SUSPECT_WORD", "NEW_AUTHOR", "AUTHOR_PREMOD", "PREMOD", "REPORTED"];
const ACTION_WORDS = { approve: "Approved", reject: "Rejected", spam: "Marked as spam", reopen: "Reopened" };
const STATE_ACTIONS = { approved: "approve", rejected: "reject", spam: "spam", pending: "reopen" };
const LEFT_WORDS = { edit: "edited on the site", second_look: "held by the second look" };
const PAGE = 50;
const CLAIM = 10;

const $ = (selector) => document.querySelector(selector);
// Single-key shortcuts are on unless turned off in this browser (localStorage): a speech-input
// user's spoken words would otherwise reach them as letters and decide comments.
const SHORTCUTS_KEY = "civility.shortcuts";
const shortcutsOn = () => localStorage.getItem(SHORTCUTS_KEY) !== "off";
// A control's aria-keyshortcuts names its key only while the key works.
const keyShortcut = (key) => (shortcutsOn() ? key : null);
const state = {
  me: null,
  site: null,
  view: "queue",
  queue: "pending",
  filters: { order: "priority", article: "", author: "", reason: "" },
  items: [],
  cursor: null,
  focus: 0,
  // The focused comment's id: a redraw (a reload landing, a live event adding or dropping a
  // comment) between two key presses keeps the focus on it rather than on its old position.
  focusId: null,
  focusMoved: false,
  // The reload in flight (or the last one): what opening or deciding learns waits for it, so a
  // page read before the claim or decision cannot land after it and undo it on screen.
  reloading: Promise.resolve(),
  // Counts the reloads: a page asked for before the latest one (another tab, order or filter
  // picked meanwhile) is of a list no longer shown, and is dropped.
  reloads: 0,
  // One map per page of the queue on its way: the ids live events took out of the queue shown
  // meanwhile, with the version they left at. A page read before such an event still lists the
  // comment, and would bring it back when it lands after it.
  leaving: new Set(),
  selected: new Set(),
  // A reload the moderator asked for (a tab, order or filter picked, Claim 10...) has not landed:
  // its page, or the console's own reload's landing in its place, starts the list at the top,
  // unless a key moved the focus meanwhile.
  afresh: false,
  // Comments this tab is deciding: their own live events come before the answer, which takes
  // them off the list and offers the undo.
  deciding: new Set(),
  // Decisions whose answers are on their way: an undo pressed meanwhile waits for them, so it
  // takes back the latest decision rather than the one before it.
  landing: new Set(),
  undo: null,
  reasons: FALLBACK_REASONS,
  holds: FALLBACK_HOLDS,
  stopLive: null,
  // `loads` counts the lists asked for (a state, filters or site picked): a page of an earlier one
  // is dropped; `loading` is the page on its way, which More does not ask for again.
  browse: { filters: { state: "approved" }, items: [], cursor: null, loads: 0, loading: null },
};

const site = () => encodeURIComponent(state.site);

// Every status region is written through announce, so words said twice are said again. What
// the queue's notice says now replaces the news of live events still being gathered (`live`: said
// for a live event, or with that news (sayOwn), which leaves them), as it would have replaced
// their words said at once.
function say(target, text, { error = false, reload = false, live = false } = {}) {
  const node = typeof target === "string" ? $(target) : target;
  if (node.id === "queue-message") {
    if (!live) dropGathered();
    notice.said += 1;
    notice.news = null;
    notice.own = null;
  }
  node.classList.toggle("error", error);
  const button = reload && text ? [" ", el("button", { type: "button", onclick: () => reloadQueue() }, "Reload")] : [];
  announce(node, text, ...button);
}

// Live events come in bursts (a bulk decision is an event per comment, a few milliseconds
// apart): said one by one, each would replace the last before it is heard. Their news is
// gathered until the events pause (or for GATHER_MAX_MS at most, on a site that never pauses)
// and said once, a sentence for each kind, in the order each kind first came. `lead`: the words
// of the moderator's own action given to the notice while news was still gathered, said before
// the news only if they still wait for their frame (announce): said already, they are not said
// twice.
const GATHER_MS = 500;
const GATHER_MAX_MS = 3000;
const NAMED = 3;
const gathered = { news: new Map(), quiet: 0, longest: 0, lead: null };
// `said` counts what the queue's notice was given to say; `news` is the news it says, while it
// says gathered news: a page landing keeps the words of what still applies. `own`: the words of
// the moderator's own action (sayOwn), while they are the last it was given.
const notice = { said: 0, news: null, own: null };

// `words` says the news for the comments gathered under `key`, given their ids; `left`: the news
// is that they left the list.
function sayLive(key, id, words, { left = false } = {}) {
  const news = gathered.news.get(key) || { ids: [], words, left };
  if (!news.ids.includes(id)) news.ids.push(id);
  gathered.news.set(key, news);
  clearTimeout(gathered.quiet);
  gathered.quiet = setTimeout(sayGathered, GATHER_MS);
  if (!gathered.longest) gathered.longest = setTimeout(sayGathered, GATHER_MAX_MS);
}

function sayGathered() {
  const told = [...gathered.news.values()];
  const lead = gathered.lead && unsaid($("#queue-message")) ? gathered.lead : null;
  const text = [lead?.text, ...told.map((news) => news.words(news.ids))].filter(Boolean).join(" ");
  dropGathered();
  say("#queue-message", text, { live: true, error: Boolean(lead?.error) });
  notice.news = told;
}

// What the queue's notice says when a page lands, `since` the notice's count when it was asked
// for. Live news of a comment the list no longer shows (another moderator's decision took it off
// while the page loaded) still applies, and is said, or stays said; what the list shows is
// dropped: a comment shown again came back since, and a reload (`replaced`) shows every comment
// of its list anew, new and edited ones alike. Without such news the list says whether it is
// empty. The console's own reload (`own`), which the moderator did not ask for, replaces no list
// of theirs: it drops no news of what it shows, and the notice keeps its words unless the list
// became empty (`wasEmpty`: it was before the page) or no longer is. The words of the moderator's
// own action still waiting for their frame (announce) are not replaced unsaid: they are said
// first, once.
function sayLanded(since, { replaced, own = false, wasEmpty = false }) {
  const shown = new Set(visibleItems().map((item) => item.id));
  const anew = replaced && !own;
  const applies = (news) => (news.left ? news.ids.filter((id) => !shown.has(id)) : anew ? [] : news.ids);
  for (const [key, news] of gathered.news) {
    news.ids = applies(news);
    if (!news.ids.length) gathered.news.delete(key);
  }
  if (!gathered.news.size) dropGathered();
  if (notice.said > since && notice.news?.some((news) => applies(news).length)) return;
  const words = shown.size ? "" : nothingShown();
  const unheard = notice.own && unsaid($("#queue-message")) ? notice.own : null;
  if (own) {
    if (!gathered.news.size && !shown.size !== wasEmpty) sayAfter(unheard, words);
  } else if (gathered.news.size) {
    // The news, said when its events pause, replaces what the notice said before the page, an
    // earlier action's words too; words not said yet are its lead, said before it unless their
    // frame comes first.
    gathered.lead = unheard;
    if (!unheard) say("#queue-message", "", { live: true });
  } else {
    sayAfter(unheard, words);
  }
}

// What a page landing says of its list (`words`, none for a list that is not empty), after the
// action's words it would otherwise replace before they are said.
function sayAfter(unheard, words) {
  if (!unheard) say("#queue-message", words);
  else if (words) say("#queue-message", `${unheard.text} ${words}`, { error: unheard.error });
}

function dropGathered() {
  clearTimeout(gathered.quiet);
  clearTimeout(gathered.longest);
  gathered.news.clear();
  gathered.quiet = 0;
  gathered.longest = 0;
  gathered.lead = null;
}

// What the moderator's own action says once the reload it made has landed (Claim 10, Release, an
// undo, a ban), `since` the notice's count when that reload was asked for. The news of comments
// that left the list while it loaded, which the landing kept, still applies: said already, it is
// said again after these words; still gathered, it is said on its own when its events pause,
// after them.
function sayOwn(text, since, { error = false } = {}) {
  const shown = new Set(visibleItems().map((item) => item.id));
  const told = (notice.said > since && notice.news ? notice.news : [])
    .filter((news) => news.left)
    .map((news) => ({ ...news, ids: news.ids.filter((id) => !shown.has(id)) }))
    .filter((news) => news.ids.length);
  const words = [text, ...told.map((news) => news.words(news.ids))].join(" ");
  say("#queue-message", words, { error, live: true });
  if (told.length) notice.news = told;
  notice.own = { text: words, error };
  gathered.lead = gathered.news.size ? notice.own : null;
}

// "c1", "c1 and c2", "c1, c2 and c3".
const listed = (ids) => (ids.length === 1 ? ids[0] : `${ids.slice(0, -1).join(", ")} and ${ids.at(-1)}`);
// "comment c1", "comments c1 and c2", "4 comments": named while they are few, else counted.
const comments = (ids) => (ids.length > NAMED ? counted(ids.length, "comment") : `${ids.length === 1 ? "comment" : "comments"} ${listed(ids)}`);
const capital = (text) => text[0].toUpperCase() + text.slice(1);
const were = (ids) => (ids.length === 1 ? "was" : "were");

// A failure in words: conflicts say who and what, never overwrite silently.
function explain(error) {
  if (!(error instanceof ApiError)) return String(error);
  if (error.code === "claim_conflict") {
    const details = error.details || {};
    const holder = details.claimed_by_name || details.claimed_by || "another moderator";
    const until = details.lease_until ? ` until ${new Date(details.lease_until).toLocaleTimeString()}` : "";
    return `Someone else is on it: ${holder} holds this comment${until}. Reload to see the queue as it is now.`;
  }
  if (error.code === "version_conflict") {
    return "This comment changed while you looked at it. Reload to see its current version before deciding.";
  }
  if (error.code === "invalid_transition") return `Not possible now: ${error.message}.`;
  if (error.code === "validation_failed" && Array.isArray(error.details) && error.details.length) {
    // What was refused, in the service's words: the field (none for a rule of the whole request).
    const refused = error.details.map((detail) => `${!detail.field || detail.field === "body" ? "" : `${detail.field}: `}${String(detail.message).replace(/^Value error, /, "")}`);
    return `Refused: ${refused.join("; ")}.`;
  }
  if (error.status === 0) return "The service cannot be reached. Check your connection and try again.";
  return `${error.message} (${error.status})`;
}

// ---------------------------------------------------------------- sign in and out

async function signIn(token) {
  session.token = token;
  try {
    state.me = await get("/v1/me");
  } catch (error) {
    session.clear();
    const words = error instanceof ApiError && error.status === 401
      ? "That token is not valid (wrong, or revoked). Check it and try again."
      : explain(error);
    say("#sign-in-error", words, { error: true });
    return;
  }
  say("#sign-in-error", "");
  $("#token").value = "";
  const picker = $("#site-picker");
  picker.replaceChildren(...state.me.sites.map((id) => el("option", { value: id, text: id })));
  picker.hidden = state.me.sites.length < 2;
  $("#who-name").textContent = state.me.admin ? "admin" : state.me.name;
  $("#nav-admin").hidden = !state.me.admin;
  $("#sign-in").hidden = true;
  $("#nav").hidden = false;
  $("#who").hidden = false;
  // The token field just hidden had the keyboard: it goes on at the page's main part.
  $("#main").focus();
  if (!state.me.sites.length) {
    show("queue");
    say("#queue-message", "No sites yet: create one with the admin API first.");
    return;
  }
  await openSite(state.me.sites[0]);
}

function signOut(message = "") {
  session.clear();
  dropGathered();
  if (state.stopLive) state.stopLive();
  state.stopLive = null;
  state.me = null;
  state.items = [];
  forgetUndo();
  for (const id of ["queue", "browse", "admin", "nav", "who"]) $(`#${id}`).hidden = true;
  $("#items").replaceChildren();
  $("#sign-in").hidden = false;
  say("#sign-in-error", message, { error: Boolean(message) });
  $("#token").focus();
}

whenSignedOut(() => signOut("Your token is no longer valid (it was revoked or changed): you have been signed out."));

async function openSite(id) {
  state.site = id;
  dropGathered();
  // An undo names comment ids, which another site (or the next moderator) has too.
  forgetUndo();
  // So do the comments on screen and the old site's events: left until the new queue lands, a
  // key would decide the new site's comment of the same id, unseen.
  if (state.stopLive) state.stopLive();
  state.stopLive = null;
  state.items = [];
  state.selected.clear();
  state.cursor = null;
  renderQueue();
  $("#site-picker").value = id;
  show("queue");
  const reasons = await siteReasons();
  // Another site picked meanwhile: its own opening goes on, this one stops here.
  if (state.site !== id) return;
  Object.assign(state, reasons);
  fillReasonPickers();
  // Following first, then reading: a comment held between the two is in one or the other.
  await startLive();
  if (state.site !== id) return;
  await reloadQueue();
}

async function siteReasons() {
  try {
    const body = await get(`/v1/sites/${site()}/reasons`);
    const codes = (body.reasons || []).map((reason) => reason.code);
    const holds = body.holds || [];
    return { reasons: codes.length ? codes : FALLBACK_REASONS, holds: holds.length ? holds : FALLBACK_HOLDS };
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;
    return { reasons: FALLBACK_REASONS, holds: FALLBACK_HOLDS };
  }
}

function fillReasonPickers() {
  $("#reason").replaceChildren(...state.reasons.map((code) => el("option", { value: code, text: code })));
  const filter = $("#queue-filters").elements.reason;
  filter.replaceChildren(el("option", { value: "", text: "Any" }), ...state.holds.map((code) => el("option", { value: code, text: code })));
}

function show(view) {
  state.view = view;
  for (const name of ["queue", "browse", "admin"]) $(`#${name}`).hidden = name !== view;
  for (const button of document.querySelectorAll("#nav button")) {
    if (button.dataset.view === view) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  if (view === "browse") loadBrowse(true);
  if (view === "admin") showAdmin(state.site, explain);
}

// ---------------------------------------------------------------- the queue

// `keep`: the console's own reload, which the moderator did not ask for (a reconnect that could
// not resume reads the queue again): the comments still listed keep their selection, the focus
// and their messages, and the notice what it says. One the moderator asked for starts afresh.
// Answers the notice's count when it was asked for (sayOwn).
async function reloadQueue({ keep = false } = {}) {
  const since = notice.said;
  state.cursor = null;
  if (!keep) {
    state.selected.clear();
    state.focusMoved = false;
    state.afresh = true;
    // No item keeps a message from before it.
    for (const node of document.querySelectorAll("#items .item-message")) node.replaceChildren();
  }
  // The comments on screen stay, and the keys act on them, until the new page replaces them.
  const shown = new Set(state.items.map((item) => item.id));
  state.reloads += 1;
  const reload = state.reloads;
  // More would add the next page of the list being replaced, or the new list's first page twice:
  // it waits for the reload (aria-disabled keeps the keyboard on it meanwhile).
  $("#queue-more").setAttribute("aria-disabled", "true");
  state.reloading = Promise.all([loadQueue(shown, { keep }), loadCounts()]);
  await state.reloading;
  if (state.reloads === reload) $("#queue-more").removeAttribute("aria-disabled");
  return since;
}

// What the queue is asked for, by the listing and by Claim 10 alike: the tab, the order and the
// filters shown (a reason within an article or author too).
function shownQueue() {
  const { order, article, author, reason } = state.filters;
  return { queue: state.queue, order, article, author, reason };
}

// `replacing`: the ids of a reload's old list, dropped when its first page lands (what a live
// event added meanwhile stays, and so does a comment whose decision is on its way); `keep`: the
// console's own reload (reloadQueue), which reads as many comments as the list showed, those
// More added too, rather than the first page alone: More's cards would leave until it is pressed
// again. Landing in place of a reload the moderator asked for, it reads that one's first page.
async function loadQueue(replacing = null, { keep = false } = {}) {
  const asked = site();
  const reload = state.reloads;
  const since = notice.said;
  const wanted = keep && !state.afresh ? Math.max(PAGE, replacing.size) : PAGE;
  const left = new Map();
  state.leaving.add(left);
  try {
    const page = await readQueue(asked, reload, wanted);
    // A copy newer than the event came back to the queue since.
    page.items = page.items.filter((item) => !(left.get(item.id) >= item.version));
    // A page of a site, a queue or filters no longer shown (others were picked while it loaded).
    if (site() !== asked || state.reloads !== reload) return;
    // What a live event added while a reload's page loaded stays, where the order shown puts it
    // among the page's comments, not above them all. So does a comment of the list shown that
    // this tab is deciding: a page read after the decision reached the service lacks it, and the
    // answer still on its way is what takes it off and offers the undo, or says why it was not
    // decided.
    const kept = replacing
      ? state.items.filter((item) => !replacing.has(item.id) || (state.deciding.has(item.id) && inQueue(item) && filtered(item)))
      : [];
    const wasEmpty = !visibleItems().length;
    if (replacing) {
      state.items = [];
      // A reload asked for starts at the top, unless a key moved the focus while it loaded.
      if (state.afresh && !state.focusMoved) {
        state.focus = 0;
        state.focusId = null;
      }
    }
    // A live event may have added one of these meanwhile.
    const shown = new Set(state.items.map((item) => item.id));
    state.items.push(...page.items.filter((item) => !shown.has(item.id)));
    state.cursor = page.next_cursor;
    for (const item of kept) {
      const at = state.items.findIndex((entry) => entry.id === item.id);
      if (at < 0) place(item);
      else if (item.version > state.items[at].version) state.items[at] = item;
    }
    $("#queue-more").hidden = !page.next_cursor;
    if (replacing) {
      // A selection is of comments shown: one the new list lacks would be decided unseen.
      const onList = new Set(state.items.map((item) => item.id));
      for (const id of state.selected) if (!onList.has(id)) state.selected.delete(id);
    }
    renderQueue();
    // The console's own reload landing in place of one the moderator asked for is that one.
    sayLanded(since, { replaced: Boolean(replacing), own: keep && !state.afresh, wasEmpty });
  } catch (error) {
    if (site() === asked && state.reloads === reload) say("#queue-message", explain(error), { error: true });
  } finally {
    state.leaving.delete(left);
    if (replacing && site() === asked && state.reloads === reload) state.afresh = false;
    // Counts the pages that came back, shown or dropped: a late page's end can be waited for.
    $("#items").dataset.pages = String(Number($("#items").dataset.pages || 0) + 1);
  }
}

// Up to `wanted` comments of the list shown, from the cursor on: a page, or as many as it takes,
// until another site or list is asked for (what it read is dropped then).
async function readQueue(asked, reload, wanted) {
  const list = shownQueue();
  const items = [];
  const seen = new Set();
  let cursor = state.cursor;
  for (;;) {
    const page = await get(`/v1/sites/${asked}/queue${query({ ...list, limit: Math.min(PAGE, wanted - items.length), cursor })}`);
    for (const item of page.items) {
      if (seen.has(item.id)) continue;
      seen.add(item.id);
      items.push(item);
    }
    cursor = page.next_cursor;
    if (!cursor || items.length >= wanted || site() !== asked || state.reloads !== reload) return { items, next_cursor: cursor };
  }
}

async function loadCounts() {
  const asked = site();
  try {
    const stats = await get(`/v1/sites/${asked}/stats`);
    if (site() !== asked) return;
    for (const name of ["pending", "reported"]) {
      document.querySelector(`[data-count="${name}"]`).textContent = String(stats.queue_depths[name] ?? 0);
      const oldest = (stats.oldest_ages_seconds || {})[name];
      // Kept as the moment it entered the queue, by the service's clock: the age grows between
      // two reads of the counts, as each card's does.
      const node = document.querySelector(`[data-age="${name}"]`);
      node.dataset.since = oldest === null || oldest === undefined ? "" : new Date(serviceNow() - oldest * 1000).toISOString();
      node.textContent = oldestAge(node.dataset.since);
    }
  } catch {
    // Counts are a nicety; the queue itself says what went wrong.
  }
}

function oldestAge(since) {
  return since ? ` · oldest ${age(Math.max(0, (serviceNow() - Date.parse(since)) / 1000))}` : "";
}

// Whether the filters shown list the comment.
function filtered(item) {
  const { reason, article, author } = state.filters;
  return (!reason || item.reasons.includes(reason))
    && (!article || item.article_id === article) && (!author || item.author?.id === author);
}

// What an empty list says: a queue cleared, or filters that match none of its comments.
function nothingShown() {
  const { article, author, reason } = state.filters;
  if (article || author || reason) return `No comment in ${state.queue} matches the filters.`;
  return `Nothing to moderate in ${state.queue}. Well done.`;
}

function visibleItems() {
  return state.items.filter(filtered);
}

function renderQueue() {
  const items = visibleItems();
  // The focused comment keeps the focus wherever it now is; gone, the one taking its place has it.
  const kept = items.findIndex((item) => item.id === state.focusId);
  state.focus = kept >= 0 ? kept : Math.min(state.focus, Math.max(0, items.length - 1));
  state.focusId = items.length ? items[state.focus].id : null;
  // What an item shows beyond its data outlives the redraw a live event causes: its message (a
  // conflict, a claim), its author's panel and the comment it answers, once opened, and the
  // keyboard's place in them.
  const before = new Map([...document.querySelectorAll("#items > li")].map((node) => [node.dataset.id, node]));
  const active = document.activeElement;
  const activeCard = active ? active.closest("#items > li") : null;
  const cards = items.map((item, index) => card(item, index));
  for (const node of cards) {
    const old = before.get(node.dataset.id);
    if (!old) continue;
    // The message area is a live region: the same element stays, said or empty, as a region
    // drawn anew with its words may not be read.
    node.querySelector(".item-message").replaceWith(old.querySelector(".item-message"));
    const author = old.querySelector(".author");
    if (author) {
      node.querySelector(".item-head").after(author);
      node.querySelector(".by button").setAttribute("aria-expanded", "true");
    }
    const parent = old.querySelector("blockquote.parent");
    const link = node.querySelector(".parent-link");
    if (parent && link) link.replaceWith(parent);
  }
  $("#items").replaceChildren(...cards);
  if (active && active.isConnected && active !== document.activeElement) active.focus({ preventScroll: true });
  else if (activeCard && !active.isConnected && !cards.length) {
    // The keyboard was on the last card: it stays in the page's main part.
    $("#main").focus({ preventScroll: true });
  } else if (activeCard && !active.isConnected) {
    // The keyboard was on a card drawn again: it goes to the same control on the new card, or
    // to the comment the keys now act on when that is another (a reload starts at the top).
    const node = cards[state.focus];
    const target = node.dataset.id === activeCard.dataset.id ? sameControl(node, activeCard, active) : node;
    target.focus({ preventScroll: true });
  }
  updateSelection();
  if (items.length) markFocus(false);
}

// On a card drawn again, the control matching one of the old card's (the card itself if none).
function sameControl(node, old, control) {
  if (control === old) return node;
  const twin = [...node.querySelectorAll(control.tagName)].find((candidate) => candidate.className === control.className
    && candidate.textContent === control.textContent && candidate.getAttribute("aria-label") === control.getAttribute("aria-label"));
  return twin || node;
}

function card(item, index) {
  // A lease that ran out ends without an event: the comment is free again.
  const held = item.claimed_by && !(Date.parse(item.lease_until) <= serviceNow());
  const mine = held && state.me && item.claimed_by === state.me.id;
  const claim = held
    ? el("p", { class: mine ? "claim mine" : "claim theirs" },
        mine ? "Claimed by you · " : `Claimed by ${item.claimed_by_name || item.claimed_by} · `,
        el("span", { "data-lease": item.lease_until, text: countdown(item.lease_until, serviceNow()) }),
        " left")
    : null;
  const select = el("input", {
    type: "checkbox",
    "aria-label": `Select comment ${item.id}`,
    checked: state.selected.has(item.id),
    onchange: (event) => toggleSelect(item.id, event.target.checked),
  });
  const queued = item.queued_at ? [" · ", el("span", { class: "waiting", "data-queued": item.queued_at, text: waiting(item.queued_at) })] : [];
  const article = el("p", { class: "meta" }, "Article ", articleLink(item.article, item.article_id), " · ", when(item.created_at), ...queued, item.lang ? ` · ${item.lang}` : "");
  const author = item.author || {};
  const authorButton = el("button", { type: "button", class: "link", "aria-expanded": "false", onclick: (event) => toggleAuthor(event.target, item) },
    author.name ? `${author.name} (${author.id})` : author.id);
  const actions = el("div", { class: "row", role: "group", "aria-label": "Decide" },
    mine ? null : el("button", { type: "button", class: "open", onclick: () => openItem(item.id), "aria-keyshortcuts": keyShortcut("o") }, "Open"),
    el("button", { type: "button", class: "approve", onclick: () => decideFocused("approve", item.id), "aria-keyshortcuts": keyShortcut("a") }, "Approve"),
    el("button", { type: "button", class: "reject", onclick: () => decideFocused("reject", item.id), "aria-keyshortcuts": keyShortcut("r") }, "Reject"),
    el("button", { type: "button", class: "spam", onclick: () => decideFocused("spam", item.id), "aria-keyshortcuts": keyShortcut("s") }, "Spam"));
  const parent = item.parent_id
    ? el("button", { type: "button", class: "link parent-link", onclick: (event) => showParent(event.target, item.parent_id) }, "Show the comment it answers")
    : null;
  return el("li", { class: "item", "data-id": item.id, "data-index": index, tabindex: -1, "aria-label": `Comment ${item.id} by ${author.name || author.id}` },
    el("div", { class: "item-head" }, select, el("span", { class: "by" }, "By ", authorButton), chips(item.reasons)),
    claim,
    evidenceText(item.text, item.evidence, item.scores),
    parent,
    el("div", { class: "item-foot" }, scoreBars(item.scores), article),
    secondLook(item),
    actions,
    el("p", { class: "item-message", role: "status", "aria-live": "polite" }));
}

// How long the comment has waited since it entered the queue, by the service's clock.
function waiting(queuedAt) {
  return `waiting ${age(Math.max(0, (serviceNow() - Date.parse(queuedAt)) / 1000))}`;
}

// The semantic stage's blended scores, when it has read the comment (a SECOND_LOOK hold shows
// why here: the lexical scores above published it).
function secondLook(item) {
  const look = item.second_look;
  if (!look || !look.scores) return null;
  return el("div", { class: "item-foot second-look" },
    el("span", { class: "label", text: "Second look" }), scoreBars(look.scores, "Second look scores"));
}

async function showParent(button, parentId) {
  // The button leaves the page: the keyboard it had goes to the quote, not the page's top.
  const holder = el("blockquote", { class: "parent", tabindex: -1 });
  const focused = document.activeElement === button;
  button.replaceWith(holder);
  if (focused) holder.focus();
  try {
    const parent = await get(`/v1/sites/${site()}/comments/${encodeURIComponent(parentId)}`);
    holder.append(el("p", { class: "meta", text: `In reply to ${parent.author.name || parent.author.id}:` }), evidenceText(parent.text, {}, {}));
  } catch (error) {
    holder.textContent = error.status === 404 ? `In reply to ${parentId} (not moderated here).` : explain(error);
  }
}

// The author's button says whether its panel is open (aria-expanded), as a screen reader tells.
async function toggleAuthor(button, item) {
  const li = button.closest("li");
  const open = li.querySelector(".author");
  button.setAttribute("aria-expanded", String(!open));
  if (open) {
    open.remove();
    return;
  }
  // Its status region is there, empty, before anything is said in it; what is shown above it
  // is drawn anew.
  const shown = el("div");
  const said = el("p", { class: "meta", role: "status" });
  const panel = el("section", { class: "author", "aria-label": "Author" }, shown, said);
  li.querySelector(".item-head").after(panel);
  const authorId = item.author.id;
  const render = (view, note = "") => {
    const rate = view.recent.rejection_rate;
    shown.replaceChildren(
      el("p", {}, el("strong", { dir: "auto", text: item.author.name || view.id }), ` · ${view.status} (${view.trust})`),
      el("p", { class: "meta", text: `approved ${view.counts.approved} · rejected ${view.counts.rejected} · spam ${view.counts.spam} · pending ${view.counts.pending}` }),
      el("p", { class: "meta", text: `last ${view.recent.days} days: ${rate === null ? "nothing decided" : `${Math.round(rate * 100)}% rejected of ${view.recent.decided}`} · first seen ${when(view.first_seen)}` }),
      el("div", { class: "row" },
        el("button", { type: "button", onclick: () => setStatus("premod") }, "Pre-moderate"),
        el("button", { type: "button", onclick: () => setStatus("trusted") }, "Trust"),
        el("button", { type: "button", onclick: () => setStatus("active") }, "Active"),
        el("label", {}, el("input", { type: "checkbox", class: "reject-held" }), " reject held comments"),
        el("button", { type: "button", class: "reject", onclick: () => setStatus("banned") }, "Ban")));
    say(said, note);
  };
  const setStatus = async (status) => {
    const body = { status };
    if (status === "banned") body.reject_pending = panel.querySelector(".reject-held").checked;
    try {
      const outcome = await post(`/v1/sites/${site()}/authors/${encodeURIComponent(authorId)}/status`, body);
      const note = statusNote(status, outcome);
      if (!outcome.rejected_now.length) {
        render(outcome.author, note);
        return;
      }
      render(outcome.author);
      const since = await reloadQueue();
      // The rejected comment's card, this panel with it, may have left the list with the reload.
      if (panel.isConnected) say(said, note);
      else sayAfterReload(note, since);
    } catch (error) {
      say(said, explain(error), { error: true });
    }
  };
  try {
    render(await get(`/v1/sites/${site()}/authors/${encodeURIComponent(authorId)}`));
  } catch (error) {
    say(said, explain(error), { error: true });
  }
}

// What a status press did. Sent again for an author who has it, it set nothing, and a ban's answer
// lists every held comment the standing ban rejected, earlier presses' and other moderators' too,
// apart from those this press rejected. The held comments it left (another moderator's claim, or
// more than one ban rejects) are said too: they still wait in the queue, under a ban.
function statusNote(status, outcome) {
  return [pressNote(status, outcome), leftHeld(outcome)].filter(Boolean).join(" ");
}

function pressNote(status, outcome) {
  const all = outcome.rejected.length;
  const now = outcome.rejected_now.length;
  if (!outcome.already_set) {
    return `Status set to ${status}${now ? `; ${counted(now, "held comment")} rejected` : ""}.`;
  }
  if (status !== "banned") return `Already ${status}: nothing changed.`;
  if (!all) return "Already banned; no held comment rejected.";
  if (!now) return `Already banned; none rejected now (the ban had rejected ${counted(all, "held comment")}).`;
  return `Already banned; ${counted(now, "held comment")} rejected now, ${all} by the ban in all.`;
}

function leftHeld(outcome) {
  const words = [];
  const failed = outcome.failed || [];
  if (failed.length) {
    const holders = [...new Set(failed.map(({ error }) => error?.details?.claimed_by_name || error?.details?.claimed_by).filter(Boolean))];
    const why = failed.every(({ error }) => error?.code === "claim_conflict") && holders.length
      ? `claimed by ${holders.join(", ")}`
      : failed[0].error?.message || "refused";
    words.push(`${counted(failed.length, "held comment")} not rejected (${why}): still in the queue.`);
  }
  if (outcome.remaining) {
    words.push(`${counted(outcome.remaining, "more held comment")} left: press Ban again to reject ${outcome.remaining === 1 ? "it" : "them"}.`);
  }
  return words.join(" ");
}

// A moderator typing in a filter or a dialog keeps the caret there when a live event redraws the
// list: otherwise the next letters typed would reach the keys and decide comments.
function typingElsewhere() {
  const active = document.activeElement;
  return Boolean(active && !active.closest("#items") && active.closest("input, textarea, select, dialog[open]"));
}

function markFocus(scroll = true) {
  const nodes = [...document.querySelectorAll("#items > li")];
  nodes.forEach((node, index) => node.classList.toggle("focused", index === state.focus));
  const node = nodes[state.focus];
  if (node && scroll && !typingElsewhere()) {
    node.focus({ preventScroll: true });
    node.scrollIntoView({ block: "nearest" });
  }
}

function move(step) {
  const count = visibleItems().length;
  if (!count) return;
  state.focus = Math.max(0, Math.min(count - 1, state.focus + step));
  state.focusId = visibleItems()[state.focus].id;
  state.focusMoved = true;
  markFocus();
}

function focusedItem() {
  return visibleItems()[state.focus] || null;
}

function toggleSelect(id, on) {
  if (on) state.selected.add(id);
  else state.selected.delete(id);
  updateSelection();
}

function updateSelection() {
  const count = state.selected.size;
  $("#selection").textContent = count ? `${count} selected` : "";
  for (const button of document.querySelectorAll("[data-bulk]")) button.disabled = !count;
  for (const box of document.querySelectorAll("#items input[type=checkbox]")) {
    box.checked = state.selected.has(box.closest("li").dataset.id);
  }
}

async function askReason() {
  const dialog = $("#reason-dialog");
  $("#note").value = "";
  dialog.showModal();
  $("#reason").focus();
  const answer = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  if (answer !== "ok") return null;
  return { reason: $("#reason").value, note: $("#note").value || undefined };
}

// A key decides the selection if there is one, else the focused comment; a card's button
// decides its own comment.
async function decideFocused(action, id) {
  if (!id && state.selected.size) return decideMany(action, [...state.selected]);
  const item = id ? state.items.find((entry) => entry.id === id) : focusedItem();
  if (!item) return;
  let extra = {};
  if (action === "reject") {
    extra = await askReason();
    if (!extra) return;
  }
  const node = () => document.querySelector(`#items > li[data-id="${CSS.escape(item.id)}"] .item-message`);
  state.deciding.add(item.id);
  const landed = onItsWay();
  try {
    const decided = await post(`/v1/sites/${site()}/comments/${encodeURIComponent(item.id)}/decision`, { action, version: item.version, ...extra });
    await state.reloading;
    remember(action, [{ id: item.id, from: item.state, version: decided.version }]);
    dropItems([item.id]);
  } catch (error) {
    // Off the list already: a second press on a comment whose first decision just landed.
    if (!state.items.some((entry) => entry.id === item.id)) return;
    let words = explain(error);
    if (error.code === "version_conflict" || error.code === "invalid_transition") {
      const now = await correct(item.id);
      if (now && !inQueue(now)) {
        // Decided by this moderator: the first of two quick presses, its answer still on the way.
        if (state.me && now.decided_by === state.me.id) return;
        say("#queue-message", `Not decided: ${now.id} is ${now.state} now (by ${now.decided_by_name || "the model"}).`, { error: true });
        return;
      }
      if (now) words = "This comment changed while you looked at it: it now shows its current version. Decide again.";
    }
    say(node() || "#queue-message", words, { error: true, reload: error.status === 409 });
  } finally {
    state.deciding.delete(item.id);
    landed();
  }
}

// Marks a decision on its way until its answer is handled; call the function it returns then.
function onItsWay() {
  let done;
  const landed = new Promise((resolve) => { done = resolve; });
  state.landing.add(landed);
  return () => {
    state.landing.delete(landed);
    done();
  };
}

// A conflict means the card is out of date (the live event saying why was missed): the comment
// read again leaves the list when it left the queue, else replaces its card.
async function correct(id) {
  let item;
  try {
    item = await get(`/v1/sites/${site()}/comments/${encodeURIComponent(id)}`);
  } catch {
    return null;
  }
  const at = state.items.findIndex((entry) => entry.id === id);
  if (at < 0) return item;
  if (!inQueue(item)) {
    dropItems([id]);
  } else {
    state.items[at] = item;
    renderQueue();
  }
  return item;
}

async function decideMany(action, ids) {
  let extra = {};
  if (action === "reject") {
    extra = await askReason();
    if (!extra) return;
  }
  const byId = new Map(state.items.map((item) => [item.id, item]));
  const decisions = ids.map((id) => ({ id, action, version: byId.get(id)?.version, ...extra }));
  for (const id of ids) state.deciding.add(id);
  const landed = onItsWay();
  try {
    const { results } = await post(`/v1/sites/${site()}/decisions`, { decisions });
    await state.reloading;
    const done = results.filter((result) => result.ok);
    const failed = results.filter((result) => !result.ok);
    remember(action, done.map((result) => ({ id: result.id, from: byId.get(result.id)?.state || "pending", version: result.comment.version })));
    state.selected.clear();
    dropItems(done.map((result) => result.id));
    if (failed.length) {
      const words = failed.map((result) => `${result.id}: ${explain(new ApiError(409, { error: result.error }))}`);
      say("#queue-message", `${failed.length} not decided. ${words.join(" ")}`, { error: true, reload: true });
    }
  } catch (error) {
    say("#queue-message", explain(error), { error: true, reload: error.status === 409 });
  } finally {
    for (const id of ids) state.deciding.delete(id);
    landed();
  }
}

// `quiet`: the caller says why they left, so an emptied list does not say it is clear first.
function dropItems(ids, { quiet = false } = {}) {
  const gone = new Set(ids);
  state.items = state.items.filter((item) => !gone.has(item.id));
  for (const id of ids) state.selected.delete(id);
  renderQueue();
  markFocus();
  loadCounts();
  if (!visibleItems().length) {
    if (state.cursor) loadQueue();
    else if (!quiet) say("#queue-message", nothingShown());
  }
}

// The toast's Undo (and the u key) decides each comment back to the state it came from.
function remember(action, changes) {
  if (!changes.length) return;
  const noun = changes.length === 1 ? `comment ${changes[0].id}` : `${changes.length} comments`;
  offerUndo({ changes, queue: state.queue, words: `${ACTION_WORDS[action]} ${noun}.` });
}

function offerUndo(undoing) {
  state.undo = undoing;
  announce($("#toast-text"), undoing.words);
  $("#toast-undo").hidden = false;
}

function forgetUndo() {
  state.undo = null;
  announce($("#toast-text"));
  $("#toast-undo").hidden = true;
}

async function undo() {
  // A decision still on its way is the latest: its answer is what the undo takes back.
  while (state.landing.size) await Promise.all([...state.landing]);
  if (!state.undo) return;
  const undoing = state.undo;
  const { changes, queue } = undoing;
  const { me, site: shown } = state;
  forgetUndo();
  const decisions = changes.map((change) => ({ id: change.id, action: STATE_ACTIONS[change.from] || "reopen", version: change.version }));
  try {
    const { results } = await post(`/v1/sites/${site()}/decisions`, { decisions });
    const failed = results.filter((result) => !result.ok);
    const since = await reloadQueue();
    // Approving again is what undoes a decision on a reported comment, and approving clears
    // its readers' reports: it does not go back to the reported queue.
    const done = queue === "reported" ? "Undone: approved again, and its reports are cleared." : "Undone.";
    sayOwn(failed.length ? `Undo failed for ${failed.map((result) => result.id).join(", ")}: ${failed[0].error.message}` : done, since, { error: failed.length > 0 });
  } catch (error) {
    say("#queue-message", explain(error), { error: true, reload: true });
    // Nothing was undone (the service unreachable, or failing the whole request): the undo is
    // offered again, unless another decision, site or moderator has come since.
    if (!state.undo && state.me === me && state.site === shown) offerUndo(undoing);
  }
}

// A reload words the queue message for the list it shows: what an action says goes after it,
// unless the reload failed and says so.
function sayAfterReload(text, since) {
  if (!$("#queue-message").classList.contains("error")) sayOwn(text, since);
}

// A claim whose answer never came (the service unreachable or failing, or still running it) may
// have leased its batch all the same: the next press for the same list sends its Idempotency-Key
// again, and gets that batch rather than a second one nobody is shown.
let unanswered = null;

// Whether a failed request may have been carried out, its answer lost on the way.
const mayHaveRun = (error) => error instanceof ApiError && (error.status === 0 || error.status >= 500 || error.code === "idempotency_in_progress");

// Claims from the list shown, never from comments the filters hide. Each press is a claim of its
// own, with a key of its own, unless it tries again one whose answer was lost.
async function claim() {
  const wanted = Object.fromEntries(Object.entries(shownQueue()).filter(([, value]) => value));
  const path = `/v1/sites/${site()}/queue/claim`;
  const body = { limit: CLAIM, ...wanted };
  const request = JSON.stringify([state.me?.id, path, body]);
  const key = unanswered?.request === request ? unanswered.key : idempotencyKey();
  unanswered = null;
  try {
    const { items } = await post(path, body, { "Idempotency-Key": key });
    const since = await reloadQueue();
    sayAfterReload(items.length ? `You hold ${counted(items.length, "comment")}; nobody else can decide ${items.length === 1 ? "it" : "them"} until the lease ends.` : "Nothing left to claim: everything is taken or decided.", since);
  } catch (error) {
    if (mayHaveRun(error)) unanswered = { request, key };
    say("#queue-message", explain(error), { error: true });
  }
}

// Opening a comment claims it for the one who opens it, so nobody decides it meanwhile; a
// comment someone else holds says who, with a Reload.
async function openItem(id) {
  const item = id ? state.items.find((entry) => entry.id === id) : focusedItem();
  if (!item) return;
  const node = () => document.querySelector(`#items > li[data-id="${CSS.escape(item.id)}"] .item-message`);
  try {
    const claimed = await post(`/v1/sites/${site()}/comments/${encodeURIComponent(item.id)}/claim`, {});
    await state.reloading;
    state.items = state.items.map((entry) => (entry.id === claimed.id ? claimed : entry));
    renderQueue();
    const shown = node();
    if (shown) say(shown, "Yours while the lease lasts: nobody else can decide it.");
  } catch (error) {
    const shown = node();
    say(shown || "#queue-message", explain(error), { error: true, reload: error.status === 409 });
  }
}

async function release() {
  try {
    const { released } = await post(`/v1/sites/${site()}/queue/release`, {});
    const since = await reloadQueue();
    sayAfterReload(`Released ${counted(released.length, "comment")}.`, since);
  } catch (error) {
    say("#queue-message", explain(error), { error: true });
  }
}

setInterval(() => {
  for (const node of document.querySelectorAll("[data-queued]")) node.textContent = waiting(node.dataset.queued);
  for (const node of document.querySelectorAll("[data-age]")) node.textContent = oldestAge(node.dataset.since);
  let lapsed = false;
  for (const node of document.querySelectorAll("[data-lease]")) {
    node.textContent = countdown(node.dataset.lease, serviceNow());
    if (Date.parse(node.dataset.lease) <= serviceNow()) lapsed = true;
  }
  if (lapsed && state.view === "queue") renderQueue();
}, 1000);

// ---------------------------------------------------------------- live

// Settles once the stream first answers (or fails to), when it has its starting point.
function startLive() {
  if (state.stopLive) state.stopLive();
  let started;
  const answered = new Promise((resolve) => { started = resolve; });
  const id = state.site;
  state.stopLive = follow(`/v1/sites/${site()}/events`, onLive, (up, lost) => {
    $("#live").textContent = up ? "live" : "reconnecting…";
    started();
    // The queue was read while no stream had named where it starts: what changed before this
    // one's start never comes as an event, so the queue is read again, now followed.
    if (lost && state.site === id) reloadQueue({ keep: true });
  }, () => {
    started();
    if (state.site !== id) return;
    $("#live").textContent = "";
    state.items = [];
    renderQueue();
    say("#queue-message", `Site ${id} no longer exists: it was deleted. Pick another site or reload the page.`, { error: true });
  });
  return answered;
}

let countsSoon = null;
async function onLive(kind, event) {
  if (kind === "comment.evidence") return showEvidence(event.comment_id);
  clearTimeout(countsSoon);
  countsSoon = setTimeout(loadCounts, 300);
  const index = state.items.findIndex((item) => item.id === event.comment_id);
  const mine = state.me && event.actor === state.me.id;
  if (kind === "comment.claimed" || kind === "comment.released") {
    // The moderator's own too: a claim or release made in another tab (or by a script with the
    // same token) shows here as theirs, or free; this tab's own agrees with its answer.
    if (index < 0) return;
    const item = state.items[index];
    item.claimed_by = kind === "comment.claimed" ? event.actor : null;
    item.claimed_by_name = kind === "comment.claimed" ? event.actor_name : null;
    item.lease_until = event.lease_until;
    renderQueue();
    return;
  }
  // A comment enters the reported queue by its readers' report alone, and any other change
  // (a decision, the site's edit, a second look's hold) takes it out.
  const queued = state.queue === "pending" ? event.state === "pending" : event.action === "report";
  // Shown or not: the page on its way may list it.
  if (!queued) for (const left of state.leaving) left.set(event.comment_id, event.version);
  if (queued && index < 0) {
    // Sent back by this moderator too: an undo in another tab, Back to pending in Browse.
    try {
      const item = await get(`/v1/sites/${site()}/comments/${encodeURIComponent(event.comment_id)}`);
      // One the filters would not list is neither shown nor said.
      if (inQueue(item) && filtered(item) && !state.items.some((entry) => entry.id === item.id) && place(item)) {
        renderQueue();
        if (!mine && state.queue === "pending") sayLive("arrived", item.id, (ids) => (ids.length > NAMED ? `${ids.length} new comments arrived.` : `New ${comments(ids)} arrived.`));
        else if (!mine) sayLive("reported", item.id, (ids) => `${capital(comments(ids))} ${were(ids)} reported.`);
        else if (visibleItems().length === 1) say("#queue-message", "", { live: true });
      }
    } catch {
      // Decided again meanwhile, or expired: nothing to show.
    }
  } else if (index >= 0 && !mine && queued && event.version > state.items[index].version) {
    // Still in this queue but changed (the site edited it): the card shows what a decision now
    // applies to, which otherwise would meet a version conflict on a text nobody sees.
    try {
      const item = await get(`/v1/sites/${site()}/comments/${encodeURIComponent(event.comment_id)}`);
      const at = state.items.findIndex((entry) => entry.id === item.id);
      if (at < 0 || item.version <= state.items[at].version) return;
      if (!inQueue(item)) return dropItems([item.id]);
      // An edit is scored again: its risk, and so its place in that order, may change.
      state.items.splice(at, 1);
      if (!place(item)) return dropItems([item.id]);
      renderQueue();
      if (event.action === "edit") sayLive("edited", item.id, (ids) => `${capital(comments(ids))} ${were(ids)} edited on the site.`);
    } catch {
      // Gone meanwhile: its own event takes it out.
    }
  } else if (index >= 0 && !queued) {
    // This tab's own decision: its answer, still on the way, drops it and offers the undo.
    if (mine && state.deciding.has(event.comment_id)) return;
    // Decided with this token elsewhere (another tab, a script): off the list, nothing to tell.
    // Another's decision is told below, so a list it empties does not first say it is clear.
    dropItems([event.comment_id], { quiet: !mine });
    if (mine) return;
    const left = LEFT_WORDS[event.action];
    const { state: now, actor } = event;
    if (left) {
      sayLive(`left ${event.action} ${now}`, event.comment_id, (ids) => `${capital(comments(ids))} ${were(ids)} ${left} and left this queue (now ${now}).`, { left: true });
    } else {
      const name = event.actor_name || actor;
      sayLive(`decided ${actor} ${now}`, event.comment_id, (ids) => `${name} decided ${ids.length > NAMED ? counted(ids.length, "comment") : listed(ids)} (${now}).`, { left: true });
    }
  }
}

// The model's evidence is worked out after the verdict: a card shown before it arrived marks it
// now. Only the spans change, and only on the text they explain (an edit has its own event).
async function showEvidence(id) {
  if (!state.items.some((item) => item.id === id)) return;
  const asked = site();
  let fresh;
  try {
    fresh = await get(`/v1/sites/${asked}/comments/${encodeURIComponent(id)}`);
  } catch {
    return;
  }
  if (site() !== asked) return;
  const at = state.items.findIndex((item) => item.id === id);
  if (at < 0 || state.items[at].text !== fresh.text) return;
  state.items[at] = { ...state.items[at], evidence: fresh.evidence };
  renderQueue();
}

// Whether `a` comes before `b` in the order shown, as the listing sorts: the highest risk first
// (equal risks by id, the last first), or the longest waiting (equal times by id).
function sortsBefore(a, b) {
  if (state.filters.order === "oldest") {
    const [first, second] = [Date.parse(a.queued_at), Date.parse(b.queued_at)];
    return first !== second ? first < second : a.id < b.id;
  }
  return a.priority !== b.priority ? a.priority > b.priority : a.id > b.id;
}

// Puts a comment arriving live where the order shown has it; one after the last comment shown
// while more pages are left comes with More instead (false: not shown).
function place(item) {
  const at = state.items.findIndex((entry) => sortsBefore(item, entry));
  if (at >= 0) state.items.splice(at, 0, item);
  else if (state.cursor) return false;
  else state.items.push(item);
  return true;
}

function inQueue(item) {
  if (state.queue === "pending") return item.state === "pending";
  return item.state === "approved" && item.reasons.includes("REPORTED");
}

// ---------------------------------------------------------------- browse

// The local midnight after a "YYYY-MM-DD" day: a day is 23 or 25 hours long where clocks change.
function nextMidnight(day) {
  const [year, month, date] = day.split("-").map(Number);
  return new Date(year, month - 1, date + 1);
}

async function loadBrowse(reset) {
  const browse = state.browse;
  if (reset) {
    browse.loads += 1;
    browse.items = [];
    browse.cursor = null;
    $("#browse-items").replaceChildren();
  } else if (browse.loading) {
    return;
  }
  const load = browse.loads;
  const asked = site();
  const { state: wanted, article, author, since, until } = browse.filters;
  const path = `/v1/sites/${site()}/comments${query({
    state: wanted, article, author, limit: PAGE, cursor: browse.cursor,
    since: since ? new Date(`${since}T00:00:00`).toISOString() : "",
    until: until ? nextMidnight(until).toISOString() : "",
  })}`;
  const loading = get(path);
  browse.loading = loading;
  try {
    const page = await loading;
    if (browse.loads !== load || site() !== asked) return;
    browse.items.push(...page.items);
    browse.cursor = page.next_cursor;
    $("#browse-more").hidden = !page.next_cursor;
    $("#browse-items").append(...page.items.map(browseCard));
    say("#browse-message", `${counted(page.total, `${wanted} comment`)}.`);
  } catch (error) {
    if (browse.loads === load && site() === asked) say("#browse-message", explain(error), { error: true });
  } finally {
    if (browse.loading === loading) browse.loading = null;
  }
}

function browseCard(item) {
  const by = item.decided_by_name || (item.decided_by.startsWith("auto") ? "the model" : item.decided_by);
  const history = el("ol", { class: "history", "aria-label": "History" });
  const li = el("li", { class: "item", "data-id": item.id },
    el("div", { class: "item-head" }, el("strong", { text: item.state }), ` · by ${by} · ${when(item.decided_at)} · `, el("span", { dir: "auto", text: `${item.author.name || item.author.id}` }), " · ", articleLink(item.article, item.article_id), chips(item.reasons)),
    evidenceText(item.text, item.evidence, item.scores),
    el("div", { class: "row" },
      el("button", { type: "button", onclick: () => loadHistory(item, history) }, "History"),
      item.state !== "pending" ? el("button", { type: "button", onclick: (event) => reopen(item, event.target) }, "Back to pending") : null),
    history,
    el("p", { class: "item-message", role: "status" }));
  return li;
}

async function loadHistory(item, list) {
  try {
    const full = await get(`/v1/sites/${site()}/comments/${encodeURIComponent(item.id)}`);
    list.replaceChildren(...full.history.map((entry) => el("li", {},
      `v${entry.version} · ${when(entry.at)} · ${entry.actor_name || entry.actor} · ${entry.action}: ${entry.from_state || "new"} → ${entry.to_state}`,
      entry.reasons.length ? ` (${entry.reasons.join(", ")})` : "",
      entry.note ? ` — ${entry.note}` : "",
      entry.previous_text ? el("blockquote", { class: "old-text" }, el("span", { class: "meta", text: "Text before this edit: " }), el("span", { dir: "auto", text: entry.previous_text })) : null)));
  } catch (error) {
    list.replaceChildren(el("li", { class: "error", text: explain(error) }));
  }
}

async function reopen(item, button) {
  const message = button.closest("li").querySelector(".item-message");
  try {
    await post(`/v1/sites/${site()}/comments/${encodeURIComponent(item.id)}/decision`, { action: "reopen", version: item.version });
    say(message, "Back in the pending queue.");
    button.remove();
    loadCounts();
  } catch (error) {
    say(message, explain(error), { error: true });
  }
}

// ---------------------------------------------------------------- wiring

$("#sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("#token").value.trim();
  if (token) signIn(token);
});
$("#sign-out").addEventListener("click", () => signOut());
$("#site-picker").addEventListener("change", (event) => openSite(event.target.value));
for (const button of document.querySelectorAll("#nav button")) {
  button.addEventListener("click", () => show(button.dataset.view));
}
// The queue tabs are one stop for Tab, the picked one; the arrow keys (Home, End) pick another.
const tabs = [...document.querySelectorAll("[role=tab]")];
function pickTab(tab) {
  state.queue = tab.dataset.queue;
  for (const other of tabs) {
    other.setAttribute("aria-selected", String(other === tab));
    other.tabIndex = other === tab ? 0 : -1;
  }
  reloadQueue();
}
for (const tab of tabs) tab.addEventListener("click", () => pickTab(tab));
$("[role=tablist]").addEventListener("keydown", (event) => {
  const at = tabs.indexOf(event.target);
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
  if (at < 0 || to === undefined || event.ctrlKey || event.metaKey || event.altKey) return;
  event.preventDefault();
  const tab = tabs[(to + tabs.length) % tabs.length];
  tab.focus();
  if (tab !== event.target) pickTab(tab);
});
$("#queue-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target.elements;
  state.filters = { order: form.order.value, article: form.article.value.trim(), author: form.author.value.trim(), reason: form.reason.value };
  reloadQueue();
});
$("#browse-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target.elements;
  state.browse.filters = { state: form.state.value, article: form.article.value.trim(), author: form.author.value.trim(), since: form.since.value, until: form.until.value };
  loadBrowse(true);
});
// A comment clicked or tabbed into is the one the keys act on, as if `j`/`k` had moved there.
$("#items").addEventListener("focusin", (event) => {
  const node = event.target.closest("#items > li");
  const index = node ? visibleItems().findIndex((item) => item.id === node.dataset.id) : -1;
  if (index < 0 || index === state.focus) return;
  state.focus = index;
  state.focusId = node.dataset.id;
  state.focusMoved = true;
  markFocus(false);
});
$("#queue-more").addEventListener("click", (event) => {
  if (event.currentTarget.getAttribute("aria-disabled") !== "true") loadQueue();
});
$("#browse-more").addEventListener("click", () => loadBrowse(false));
$("#claim").addEventListener("click", claim);
$("#release").addEventListener("click", release);
$("#toast-undo").addEventListener("click", undo);
$("#keys-button").addEventListener("click", () => $("#keys-dialog").showModal());
function showShortcuts() {
  $("#shortcuts").checked = shortcutsOn();
  const help = keyShortcut("?");
  if (help) $("#keys-button").setAttribute("aria-keyshortcuts", help);
  else $("#keys-button").removeAttribute("aria-keyshortcuts");
}
$("#shortcuts").addEventListener("change", (event) => {
  localStorage.setItem(SHORTCUTS_KEY, event.target.checked ? "on" : "off");
  showShortcuts();
  if (state.me) renderQueue();
});
// Turned on or off in another tab of this browser: this one shows it too (its keys already follow).
window.addEventListener("storage", (event) => {
  if (event.key !== SHORTCUTS_KEY && event.key !== null) return;
  showShortcuts();
  if (state.me) renderQueue();
});
showShortcuts();
for (const button of document.querySelectorAll("[data-bulk]")) {
  button.addEventListener("click", () => decideMany(button.dataset.bulk, [...state.selected]));
}

const KEYS = {
  j: () => move(1),
  k: () => move(-1),
  a: () => decideFocused("approve"),
  r: () => decideFocused("reject"),
  s: () => decideFocused("spam"),
  u: () => undo(),
  x: () => {
    const item = focusedItem();
    if (item) toggleSelect(item.id, !state.selected.has(item.id));
  },
  c: () => claim(),
  o: () => openItem(),
  "?": () => $("#keys-dialog").showModal(),
};

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || !shortcutsOn()) return;
  // Keys are letters typed in a field; a checkbox (a comment's own) takes no letters.
  if (event.target.closest("input:not([type=checkbox]), textarea, select, dialog[open]")) return;
  if (document.querySelector("dialog[open]")) return;
  const handler = KEYS[event.key];
  if (!handler || !state.me) return;
  if (state.view !== "queue" && event.key !== "?") return;
  event.preventDefault();
  handler();
});

if (session.token) signIn(session.token);
else $("#token").focus();

