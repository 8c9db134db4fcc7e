// The bell in the header: unread count and color of the most urgent unread priority, the
// tab title, and a dropdown of the latest notifications. Live without reload: it polls the
// unread count with If-None-Match, so an idle bell gets a 304 (one cheap query on the
// server), and fetches the list only when something changed.
import {
  announceChange, api, config, digestItems, el, priorityBadge, timeElement, workspaceLabel,
} from "./api.js";

const COUNT_URL = "/api/notifications/unread-count/";
const LIST_URL = "/api/notifications/?page_size=8";
const ORDER = ["critical", "high", "medium", "low", "info"];

const button = document.getElementById("bell-button");
const badge = document.getElementById("bell-badge");
const panel = document.getElementById("bell-panel");
const list = document.getElementById("bell-list");
const empty = document.getElementById("bell-empty");
const markAll = document.getElementById("bell-mark-all");

let countEtag = null;
let listEtag = null;
let listStale = true;
let timer = null;

function showCount({ count, by_priority: byPriority }) {
  const top = ORDER.find((p) => (byPriority[p] || 0) > 0) || "";
  badge.textContent = count > 99 ? "99+" : String(count);
  badge.hidden = count === 0;
  badge.dataset.priority = top;
  button.setAttribute("aria-label", `Notifications: ${count} unread`);
  button.dataset.count = String(count);
  const title = document.title.replace(/^\(\d+\)\s*/, ""); // the page may rename itself
  document.title = count > 0 ? `(${count}) ${title}` : title;
}

function itemRow(notification) {
  const link = el("a", {
    class: "bell-item-link", href: `/notifications/${notification.id}/`,
    dataset: { id: notification.id },
    onclick: (event) => openNotification(event, notification),
  },
  priorityBadge(notification.priority),
  el("span", { class: "bell-item-title" }, notification.title),
  el("span", { class: "bell-item-meta" },
    workspaceLabel(notification, "All workspaces"), " · ", timeElement(notification.created_at)));
  const row = el("li", {
    class: `bell-item${notification.is_read ? "" : " unread"}`,
    dataset: { id: notification.id, kind: notification.kind },
  }, link);
  if (notification.kind === "digest") row.append(digestItems(notification));
  return row;
}

async function openNotification(event, notification) {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  try {
    if (!notification.is_read) await api(`/api/notifications/${notification.id}/read/`, { method: "POST" });
  } finally {
    window.location.assign(`/notifications/${notification.id}/`);
  }
}

function showList(notifications) {
  list.replaceChildren(...notifications.map(itemRow));
  empty.hidden = notifications.length > 0;
}

async function refreshList() {
  const { status, data, etag } = await api(LIST_URL, { etag: listEtag });
  if (status === 200) {
    listEtag = etag;
    showList(data.results);
  }
  listStale = false;
}

async function poll() {
  clearTimeout(timer);
  try {
    const { status, data, etag } = await api(COUNT_URL, { etag: countEtag });
    if (status === 200) {
      countEtag = etag;
      showCount(data);
      listStale = true;
      window.dispatchEvent(new CustomEvent("datafi:bell-changed"));
    }
    if (listStale && !panel.hidden) await refreshList();
  } catch (error) {
    console.warn("bell poll failed", error);
  } finally {
    timer = setTimeout(poll, config.pollMs);
  }
}

function setOpen(open) {
  panel.hidden = !open;
  button.setAttribute("aria-expanded", String(open));
  if (open && listStale) refreshList().catch((error) => console.warn(error));
}

button.addEventListener("click", () => setOpen(panel.hidden));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !panel.hidden) { setOpen(false); button.focus(); }
});
document.addEventListener("click", (event) => {
  if (!panel.hidden && !document.getElementById("bell").contains(event.target)) setOpen(false);
});
markAll.addEventListener("click", async () => {
  await api("/api/notifications/read-all/", { method: "POST" });
  announceChange();
});
// Something on this page changed reading state: ask now instead of at the next tick.
window.addEventListener("datafi:changed", () => { listStale = true; poll(); });
document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });

poll();
