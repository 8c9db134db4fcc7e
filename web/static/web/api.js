// The REST API as the pages use it: session cookie + CSRF header, JSON, ETags.

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

/** Reference data rendered into the page (priorities, categories, poll interval). */
export const config = (() => {
  const node = document.getElementById("app-config");
  const data = node ? JSON.parse(node.textContent) : {};
  return {
    priorities: data.priorities || [],
    categories: data.categories || [],
    pollMs: data.poll_ms || 10000,
  };
})();

export const priorityInfo = (value) =>
  config.priorities.find((p) => p.value === value) || { value, label: value };

export const categoryName = (slug) =>
  (config.categories.find((c) => c.slug === slug) || {}).name || slug || "Mixed";

/**
 * fetch() against the API. Returns {status, data, etag}; data is null for 304/204.
 * Pass `etag` to ask for a 304 when nothing changed.
 */
export async function api(path, { method = "GET", body, etag } = {}) {
  const headers = { Accept: "application/json" };
  if (etag) headers["If-None-Match"] = etag;
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (response.status !== 304 && response.status !== 204) {
    const text = await response.text();
    data = text ? JSON.parse(text) : null;
  }
  if (response.status >= 400) {
    const error = new Error(`${method} ${path}: ${response.status}`);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return { status: response.status, data, etag: response.headers.get("ETag") };
}

/** Tell the bell (and any open list) that reading state changed here. */
export const announceChange = () => window.dispatchEvent(new CustomEvent("datafi:changed"));

/** A small element builder: el("span", {class: "x"}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A priority's badge; its color comes from priority-colors.css by data-priority. */
export function priorityBadge(priority) {
  const info = priorityInfo(priority);
  return el("span", { class: "priority", "data-priority": info.value }, info.label);
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "short" });
const STEPS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
               ["hour", 3600], ["minute", 60]];

export function relativeTime(iso) {
  if (!iso) return "";
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  for (const [unit, size] of STEPS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return "just now";
}

export const absoluteTime = (iso) => (iso ? new Date(iso).toLocaleString() : "");

export function timeElement(iso) {
  return el("time", { datetime: iso, title: absoluteTime(iso) }, relativeTime(iso));
}

/** A workspace as people know it: its name, with its id on hover (only the id for a
 * notification stored before names were sent); ``none`` when platform-wide. */
export function workspaceLabel(thing, none) {
  if (!thing.workspace_id) return none;
  return el("span", { class: "workspace", title: thing.workspace_id },
    thing.workspace_name || thing.workspace_id);
}

/** A digest's events, folded: its count as the summary, each event when opened. */
export function digestItems(notification) {
  const count = notification.item_count;
  return el("details", { class: "digest" },
    el("summary", {}, `${count} ${count === 1 ? "event" : "events"}`),
    el("ul", { class: "digest-items" }, notification.items.map((item) => el("li", {},
      priorityBadge(item.priority), " ",
      el("span", { class: "digest-item-title" }, item.title), " ",
      el("span", { class: "muted" }, workspaceLabel(item, ""), " ", timeElement(item.occurred_at))))));
}
