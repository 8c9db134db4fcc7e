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
    eventTypes: data.event_types || [],
    timeZones: data.time_zones || [],
    workspaces: data.workspaces || [],
  };
})();

export const priorityInfo = (value) =>
  config.priorities.find((p) => p.value === value) || { value, label: value };

export const categoryName = (slug) =>
  (config.categories.find((c) => c.slug === slug) || {}).name || slug || "Mixed";

/** An event type as people know it: its label ("Query failed"), else its key. */
export const eventTypeLabel = (key) =>
  (config.eventTypes.find((t) => t.key === key) || {}).label || key;

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

/** What a refused request says, for a person: the API's messages (``{field: [message]}``
 * or ``{"detail"}``), else the status. */
export function errorText(error) {
  const messages = (value) => (value && typeof value === "object"
    ? Object.values(value).flatMap(messages) : [String(value)]);
  return error.data ? messages(error.data).join(" ") : String(error.message || error);
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

/** Text for screen readers only (``.visually-hidden``). */
export const hiddenText = (text) => el("span", { class: "visually-hidden" }, text);

/**
 * Replace ``container``'s children and keep the keyboard where it was: the element with the
 * same ``data-focus-key`` in the new children gets the focus back (a poll re-rendered the
 * list under a keyboard user). Keys read ``<id>:<control>[:<part>]``; when that control is
 * gone (someone else acknowledged or resolved it meanwhile), the focus goes to the closest
 * one left: ``<id>:<control>``, else the notification's own ``<id>:open``.
 */
export function replaceKeepingFocus(container, children) {
  const focused = container.contains(document.activeElement)
    ? document.activeElement.dataset.focusKey : undefined;
  container.replaceChildren(...children);
  if (focused) focusByKey(container, focused);
}

/** Focus the element of ``container`` with focus key ``key``, or the closest one left (see
 * ``replaceKeepingFocus``); whether one got it. */
export function focusByKey(container, key) {
  const find = (k) => container.querySelector(`[data-focus-key="${CSS.escape(k)}"]`);
  const parts = key.split(":");
  const keys = [];
  for (let n = parts.length; n >= Math.min(2, parts.length); n -= 1) {
    keys.push(parts.slice(0, n).join(":"));
  }
  const target = [...keys, `${parts[0]}:open`].map(find).find(Boolean);
  target?.focus();
  return Boolean(target);
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

/**
 * A grouped notification's repeats: "× N" (N occurrences in all, the first and its
 * repeats) and when the last one happened; null when it never repeated.
 */
export function repeatInfo(notification) {
  if (!notification.repeat_count) return null;
  const times = notification.repeat_count + 1;
  return el("span", { class: "repeat", dataset: { occurrences: times } },
    el("span", { class: "repeat-count", "aria-hidden": "true" }, `× ${times}`),
    hiddenText(`${times} occurrences`),
    notification.last_occurred_at
      ? [" · last ", timeElement(notification.last_occurred_at)] : null);
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
