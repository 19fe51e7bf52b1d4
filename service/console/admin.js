// The admin's page for one site: moderators (add, revoke), secrets (rotate), the policy.
// Secrets and new tokens are shown once, in the page only, as the API returns them.

import { ApiError, api, get, post } from "./api.js";
import { announce, el, when } from "./render.js";

const $ = (selector) => document.querySelector(selector);
let current = null;
let explainError = String;

function say(selector, ...parts) {
  announce($(selector), ...parts);
}

export async function showAdmin(site, explain) {
  current = site;
  explainError = explain;
  say("#moderators-message");
  say("#secrets-message");
  say("#policy-message");
  // Nothing of the site shown before stays while this one's loads.
  $("#moderators tbody").replaceChildren();
  $("#policy").value = "";
  await Promise.all([loadModerators(), loadPolicy()]);
}

const base = () => `/v1/sites/${encodeURIComponent(current)}`;

// Counts the lists and policies that came back, shown or dropped: a late one's end can be waited
// for, as the queue's pages can (app.js).
function cameBack() {
  $("#admin").dataset.loads = String(Number($("#admin").dataset.loads || 0) + 1);
}

// A list or policy asked for a site no longer shown (another picked while it loaded) is dropped.
async function loadModerators() {
  const body = $("#moderators tbody");
  const asked = current;
  try {
    const { moderators } = await get(`${base()}/moderators`);
    if (current !== asked) return;
    body.replaceChildren(...moderators.map((moderator) => el("tr", {},
      el("td", { text: moderator.name }),
      el("td", {}, el("code", { text: moderator.id })),
      el("td", { text: when(moderator.created_at) }),
      el("td", { text: moderator.last_used_at ? when(moderator.last_used_at) : "never" }),
      el("td", {}, el("button", { type: "button", onclick: () => revoke(moderator) }, `Revoke ${moderator.name}`)))));
  } catch (error) {
    if (current !== asked) return;
    // Said in the table, so a message above it (a new token) stays readable.
    body.replaceChildren(el("tr", {}, el("td", { colspan: 5, text: `The list could not be read: ${explainError(error)}` })));
  } finally {
    cameBack();
  }
}

async function revoke(moderator) {
  try {
    await api("DELETE", `${base()}/moderators/${encodeURIComponent(moderator.id)}`);
    say("#moderators-message", `${moderator.name} is revoked: the token no longer works.`);
    await loadModerators();
  } catch (error) {
    say("#moderators-message", explainError(error));
  }
}

$("#add-moderator").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = event.target.elements.name.value.trim();
  try {
    const created = await post(`${base()}/moderators`, { name });
    event.target.reset();
    say("#moderators-message", `Token for ${created.name} (shown once; hand it over now): `, el("code", { class: "secret", text: created.token }));
    await loadModerators();
  } catch (error) {
    say("#moderators-message", explainError(error));
  }
});

$("#rotate-secret").addEventListener("click", async () => {
  try {
    const rotated = await post(`${base()}/secrets:rotate`, {});
    say("#secrets-message", "New webhook secret (shown once): ", el("code", { class: "secret", text: rotated.webhook_secret }), ` · the previous one works until ${when(rotated.previous_valid_until)}.`);
  } catch (error) {
    say("#secrets-message", explainError(error));
  }
});

$("#rotate-key").addEventListener("click", async () => {
  try {
    const rotated = await post(`${base()}/api-key:rotate`, {});
    say("#secrets-message", "New API key (shown once): ", el("code", { class: "secret", text: rotated.api_key }), ` · the previous one works until ${when(rotated.previous_valid_until)}.`);
  } catch (error) {
    say("#secrets-message", explainError(error));
  }
});

async function loadPolicy() {
  const asked = current;
  try {
    const siteBody = await get(base());
    if (current !== asked) return;
    $("#policy").value = JSON.stringify(siteBody.policy, null, 2);
  } catch (error) {
    if (current !== asked) return;
    say("#policy-message", explainError(error));
  } finally {
    cameBack();
  }
}

$("#policy-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  let policy;
  try {
    policy = JSON.parse($("#policy").value);
  } catch (error) {
    say("#policy-message", `The policy is not valid JSON: ${error.message}`);
    return;
  }
  try {
    const saved = await api("PATCH", base(), { policy });
    $("#policy").value = JSON.stringify(saved.policy, null, 2);
    say("#policy-message", "Policy saved.");
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && Array.isArray(error.details)) {
      const list = el("ul", { class: "error" }, ...error.details.map((detail) => el("li", { text: `${detail.field}: ${detail.message}` })));
      say("#policy-message", "The policy was not saved:", list);
    } else {
      say("#policy-message", explainError(error));
    }
  }
});
