// The console's only way to the service: the public HTTP API, with the token from sessionStorage
// (never a URL, never a cookie). Failures become ApiError with words a moderator can act on.

const TOKEN_KEY = "civility.token";
// The service writes to an open stream at least every 15 s (a keep-alive when nothing happens):
// three times as long without a byte is a connection that died without saying so.
const SILENCE_MS = 45_000;

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed (${status})`);
    this.status = status;
    this.code = error.code || "error";
    this.details = error.details ?? null;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

// How far the service's clock is ahead of the browser's, from its answers' Date header: leases end
// by the service's clock, and a browser's may be minutes off.
let clockOffset = 0;
export const serviceNow = () => Date.now() + clockOffset;
function noteClock(response) {
  const date = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(date)) clockOffset = date - Date.now();
}

// Called with the ApiError when the token stops working (revoked, or the admin token changed).
let onSignedOut = () => {};
export function whenSignedOut(handler) {
  onSignedOut = handler;
}

// `sent` adds headers of the request's own (an Idempotency-Key).
export async function api(method, path, body, sent = {}) {
  const headers = { ...sent, Authorization: `Bearer ${session.token}` };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { error: { code: "offline", message: "the service cannot be reached" } });
  }
  noteClock(response);
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, parsed);
    if (response.status === 401) onSignedOut(error);
    throw error;
  }
  return parsed;
}

export const get = (path) => api("GET", path);
export const post = (path, body, headers) => api("POST", path, body ?? {}, headers);

// A fresh Idempotency-Key: 128 random bits in hex. Not crypto.randomUUID, which a console served
// over plain HTTP on another host than localhost (not a secure context) does not have.
export function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// Server-Sent Events read with fetch, because EventSource cannot send the Authorization header
// (and the token must not travel in a URL). Reconnects by itself, resuming with Last-Event-ID,
// except to a site that no longer exists (`onGone`): that stream can never open again.
// `onState(up, lost)`: `lost` when a reconnect could not resume (no earlier connection named its
// starting point), so it starts from the newest event and what came before it may be missed.
export function follow(path, onEvent, onState, onGone = () => {}) {
  let lastId = "";
  let stopped = false;
  let controller = null;
  let attempts = 0;
  const run = async () => {
    while (!stopped) {
      const lost = attempts > 0 && !lastId;
      attempts += 1;
      controller = new AbortController();
      const aborted = controller;
      let silence = null;
      const listen = () => {
        clearTimeout(silence);
        silence = setTimeout(() => aborted.abort(), SILENCE_MS);
      };
      let retry = 2000;
      listen();
      try {
        const headers = { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
        if (response.status === 401) {
          onSignedOut(new ApiError(401, await response.json().catch(() => null)));
          return;
        }
        if (response.status === 404) {
          onGone();
          return;
        }
        if (!response.ok || !response.body) {
          // A server holding all the streams it may (503 streams_busy) says when to come back.
          const after = Number(response.headers.get("Retry-After"));
          if (after > 0) retry = Math.max(retry, after * 1000);
          throw new Error(String(response.status));
        }
        onState(true, lost);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          listen();
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = parseFrame(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (frame.retry) retry = frame.retry;
            if (frame.id) lastId = frame.id;
            if (frame.event === "error") {
              // The stream's last word: a token that stopped working signs out; anything else
              // (Redis away) ends the stream and the loop reconnects.
              if (frame.data?.error?.code === "unauthorized") {
                onSignedOut(new ApiError(401, frame.data));
                return;
              }
              if (frame.data?.error?.code === "not_found") {
                onGone();
                return;
              }
            } else if (frame.event && frame.data) {
              onEvent(frame.event, frame.data);
            }
          }
        }
      } catch {
        if (stopped) return;
      } finally {
        clearTimeout(silence);
      }
      onState(false, false);
      await new Promise((resolve) => setTimeout(resolve, retry));
    }
  };
  run();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}

function parseFrame(text) {
  const frame = {};
  const data = [];
  for (const line of text.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") data.push(value);
    else if (field === "event") frame.event = value;
    else if (field === "id") frame.id = value;
    else if (field === "retry") frame.retry = Number(value) || 0;
  }
  if (data.length) {
    try {
      frame.data = JSON.parse(data.join("\n"));
    } catch {
      frame.data = null;
    }
  }
  return frame;
}
