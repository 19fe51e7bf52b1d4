// Building the page from data. Every piece of comment text, author name, article and URL goes in
// through textContent or an attribute value, never as markup.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const percent = (value) => `${Math.round(value * 100)}%`;

// The text with its evidence: spans are code-point offsets per label, and may overlap, so each
// run of characters is marked with every label covering it.
export function evidenceText(text, evidence, scores) {
  const chars = Array.from(text);
  const labelsAt = chars.map(() => []);
  for (const [label, spans] of Object.entries(evidence || {})) {
    for (const [start, end] of spans) {
      for (let index = Math.max(0, start); index < Math.min(end, chars.length); index += 1) {
        if (!labelsAt[index].includes(label)) labelsAt[index].push(label);
      }
    }
  }
  const container = el("p", { class: "text", dir: "auto" });
  let index = 0;
  while (index < chars.length) {
    const labels = labelsAt[index];
    let end = index + 1;
    while (end < chars.length && labelsAt[end].join() === labels.join()) end += 1;
    const piece = chars.slice(index, end).join("");
    if (labels.length) {
      const described = labels
        .map((label) => `${label} ${scores && label in scores ? percent(scores[label]) : ""}`.trim())
        .join(", ");
      container.append(
        el("mark", { class: `ev ev-${labels[0].replace(/[^a-z_]/g, "")}`, tabindex: 0, title: described, "aria-label": `${piece} (${described})` }, piece),
      );
    } else {
      container.append(document.createTextNode(piece));
    }
    index = end;
  }
  return container;
}

export function scoreBars(scores, name = "Scores") {
  const list = el("ul", { class: "scores", "aria-label": name });
  const entries = Object.entries(scores || {}).sort((a, b) => b[1] - a[1]);
  for (const [label, value] of entries) {
    const meter = el("meter", { min: 0, max: 1, value, "aria-label": `${label} ${percent(value)}` });
    list.append(el("li", {}, el("span", { class: "label", text: label }), meter, el("span", { class: "value", text: percent(value) })));
  }
  return list;
}

export function chips(reasons) {
  const list = el("ul", { class: "chips", "aria-label": "Reasons" });
  for (const reason of reasons || []) list.append(el("li", { class: "chip", text: reason }));
  return list;
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

/** "1 comment", "2 comments": a count and its noun, agreeing. */
export const counted = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;

export function age(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 90) return `${Math.round(seconds)}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

export function countdown(untilIso, now = Date.now()) {
  const left = Math.max(0, Math.round((new Date(untilIso).getTime() - now) / 1000));
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
}

// An article link only for http(s) URLs: a javascript: or data: URL stays text, never a link.
export function safeHref(url) {
  if (typeof url !== "string") return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

// The comment's article: its title (or id) as a link opening in a new tab when its URL is http(s).
// `dir="auto"` isolates the title: a right-to-left one would otherwise pull the date after it
// to its left.
export function articleLink(article, fallbackId) {
  const id = (article && article.id) || fallbackId;
  const name = (article && article.title) || id;
  const href = safeHref(article && article.url);
  if (!href) return el("span", { class: "article", dir: "auto", title: id, text: name });
  return el("a", { class: "article", dir: "auto", href, target: "_blank", rel: "noopener noreferrer", title: id, text: name });
}

// A screen reader reads a live region when its words change: the same words written again (a
// second conflict on one comment, two bulk decisions of as many comments) would go unsaid. The
// region is emptied at once, and its new content written once a frame has been drawn without it
// (the frame after the next: what the first frame's callbacks write is drawn in that same frame).
// A hidden tab draws no frames, so there the words are written at once, as new nodes (a region's
// nodes added are what it announces, whatever their words); words still waiting for a frame when
// the tab is hidden are written then, not when it is shown again.
const writing = new Map();
function write(node) {
  const { frame, content } = writing.get(node);
  cancelAnimationFrame(frame);
  writing.delete(node);
  node.replaceChildren(...content);
}
export function announce(node, ...content) {
  if (writing.has(node)) cancelAnimationFrame(writing.get(node).frame);
  writing.delete(node);
  node.replaceChildren();
  if (content.every((part) => part === "" || part === null || part === undefined)) return;
  if (document.visibilityState === "hidden") {
    node.replaceChildren(...content);
    return;
  }
  const pending = { content, frame: 0 };
  pending.frame = requestAnimationFrame(() => {
    pending.frame = requestAnimationFrame(() => write(node));
  });
  writing.set(node, pending);
}
// Whether the words last given to the region still wait for their frame: not said yet.
export const unsaid = (node) => writing.has(node);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") for (const node of [...writing.keys()]) write(node);
});
