// The bell in the header: unread count and color of the most urgent unread priority, the
// tab title, and a dropdown of the latest notifications. Live without reload: it polls the
// unread count with If-None-Match, so an idle bell gets a 304 (one cheap query on the
// server), and fetches the list only when something changed. Each notification can be
// snoozed (gone from the bell and the count at once) and, unless it is a digest or critical,
// its event type muted ("Mute this kind", with Undo). A critical or high event can be
// acknowledged and any event resolved, for everyone it went to; each row shows whether it
// was acknowledged (by whom), escalated or resolved, and another user's bell follows on
// its next poll.
import {
  announceChange, api, config, digestItems, el, errorText, eventTypeLabel, focusByKey,
  priorityBadge, repeatInfo, replaceKeepingFocus, timeElement, workspaceLabel,
} from "./api.js";
import {
  clockText, closeOpenControl, muteEventType, muteRemove, snoozeControl, userTimeZone,
} from "./attention.js";
import {
  acknowledgeButton, acknowledgedText, canAcknowledge, canResolve, incidentStates,
  resolveControl, resolvedText,
} from "./incidents.js";

const COUNT_URL = "/api/notifications/unread-count/";
const LIST_URL = "/api/notifications/?page_size=8";
const ORDER = ["critical", "high", "medium", "low", "info"];

const button = document.getElementById("bell-button");
const badge = document.getElementById("bell-badge");
const panel = document.getElementById("bell-panel");
const list = document.getElementById("bell-list");
const empty = document.getElementById("bell-empty");
const markAll = document.getElementById("bell-mark-all");
const notice = document.getElementById("bell-notice");

let countEtag = null;
let listEtag = null;
let listStale = true;
let timer = null;
let openFor = null; // whose menu shows ("<id>:snooze", "<id>:resolve"), kept across renders
let zone; // the user's time zone, once read: the states' times on their clock

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
  const repeats = repeatInfo(notification);
  const link = el("a", {
    class: "bell-item-link", href: `/notifications/${notification.id}/`,
    dataset: { id: notification.id, focusKey: `${notification.id}:open` },
    onclick: (event) => openNotification(event, notification),
  },
  priorityBadge(notification.priority),
  el("span", { class: "bell-item-title" }, notification.title),
  el("span", { class: "bell-item-meta" },
    workspaceLabel(notification, "All workspaces"), " · ", timeElement(notification.created_at),
    repeats ? [" · ", repeats] : null),
  incidentLine(notification));
  const row = el("li", {
    class: `bell-item${notification.is_read ? "" : " unread"}`,
    dataset: { id: notification.id, kind: notification.kind },
  }, link);
  if (notification.kind === "digest") row.append(digestItems(notification));
  row.append(itemActions(notification, row));
  return row;
}

function incidentLine(notification) {
  const states = incidentStates(notification, { zone });
  return states && el("span", { class: "bell-item-states" }, states);
}

/** Keeps ``key``'s menu open across re-renders while it shows. */
const keepOpen = (key) => ({
  open: openFor === key,
  onToggle: (open) => {
    if (open) openFor = key;
    else if (openFor === key) openFor = null;
  },
});

/** Acknowledge (critical and high) and Resolve; Snooze; and "Mute this kind" for one
 * event's notification that is not critical (a digest mixes kinds; critical events are
 * never muted, so the button would promise nothing). */
function itemActions(notification, row) {
  const actions = el("div", { class: "bell-item-actions" });
  if (canAcknowledge(notification)) {
    actions.append(acknowledgeButton(notification, {
      onAcknowledged: (updated) => {
        replaceRow(row, updated, `${updated.id}:resolve`);
        announceChange(); // read now: the count follows at once
        say(acknowledgedText(updated));
      },
      onError: (error) => say(`Not acknowledged: ${errorText(error)}`),
    }));
  }
  if (canResolve(notification)) {
    actions.append(resolveControl(notification, {
      ...keepOpen(`${notification.id}:resolve`),
      onResolved: ({ notification: updated, resolvedNow }) => {
        replaceRow(row, updated, `${updated.id}:open`);
        announceChange();
        say(resolvedText(updated, resolvedNow));
      },
      onError: (error) => say(`Not resolved: ${errorText(error)}`),
    }));
  }
  actions.append(snoozeControl(notification, {
    ...keepOpen(`${notification.id}:snooze`),
    onSnoozed: async (snoozed) => {
      removeRow(row);
      announceChange(); // the count follows at once
      const zone = await userTimeZone().catch(() => undefined);
      say(`Snoozed “${notification.title}” until ${clockText(snoozed.snoozed_until, zone)}.`);
    },
    onError: (error) => say(`Not snoozed: ${errorText(error)}`),
  }));
  if (notification.kind !== "digest" && notification.priority !== "critical") {
    actions.append(muteButton(notification.event_type, notification.id));
  }
  return actions;
}

/** Show ``row`` as ``notification`` is now, the keyboard on its ``focusKey`` (or the
 * closest control left) if it was in the row. */
function replaceRow(row, notification, focusKey) {
  const shown = list.querySelector(`.bell-item[data-id="${notification.id}"]`) || row; // polled
  const hadFocus = shown.contains(document.activeElement)
    || document.activeElement === document.body;
  const fresh = itemRow(notification);
  shown.replaceWith(fresh);
  if (hadFocus) focusByKey(fresh, focusKey);
}

/** Take a row out of the list now, and keep the keyboard in the list. */
function removeRow(row) {
  const next = row.nextElementSibling || row.previousElementSibling;
  const hadFocus = row.contains(document.activeElement) || document.activeElement === document.body;
  row.remove();
  empty.hidden = list.children.length > 0;
  if (hadFocus) (next?.querySelector(".bell-item-link") || markAll).focus();
}

/** A message in the panel (a status: screen readers hear it), with optional controls. */
function say(text, ...controls) {
  notice.replaceChildren(el("span", {}, text), ...controls);
}

// --- mutes: the user's own, read when the panel opens, so each row says whether its kind is
// muted and its button mutes or unmutes it.
let mutes = [];

const activeMutes = (key) => mutes.filter((m) => m.event_type === key
  && (m.until === null || Date.parse(m.until) > Date.now()));

async function loadMutes({ changed = false } = {}) {
  if (changed) window.dispatchEvent(new CustomEvent("datafi:mutes-changed"));
  mutes = (await api("/api/mutes/")).data;
  for (const node of list.querySelectorAll("button[data-action=mute]")) showMuteState(node);
}

function showMuteState(node) {
  const muted = activeMutes(node.dataset.eventType).length > 0;
  const text = muted ? "Unmute this kind" : "Mute this kind";
  node.textContent = text;
  node.setAttribute("aria-label", `${text}: ${eventTypeLabel(node.dataset.eventType)}`);
  node.dataset.muted = String(muted);
}

function muteButton(key, id) {
  const node = el("button", {
    type: "button", class: "link-button",
    dataset: { action: "mute", eventType: key, focusKey: `${id}:mute` },
    onclick: () => (activeMutes(key).length ? unmute(key) : mute(key)),
  });
  showMuteState(node);
  return node;
}

async function mute(key) {
  const label = eventTypeLabel(key);
  try {
    mutes = [...mutes, await muteEventType(key)];
    say(`Muted “${label}”: new ones won't reach you until you unmute it (critical ones ` +
        "still do). ",
      el("button", { type: "button", class: "link-button", id: "bell-undo-mute",
                     onclick: () => unmute(key) }, "Undo"),
      " · ", el("a", { href: "/preferences/#mutes" }, "Your mutes"));
  } catch (error) {
    say(`Not muted: ${errorText(error)}`);
  }
  await loadMutes({ changed: true }).catch((error) => console.warn(error));
}

async function unmute(key) {
  const label = eventTypeLabel(key);
  try {
    for (const found of activeMutes(key)) await muteRemove(found.id);
    say(`“${label}” is no longer muted.`);
  } catch (error) {
    say(`Not unmuted: ${errorText(error)}`);
  }
  await loadMutes({ changed: true }).catch((error) => console.warn(error));
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
  replaceKeepingFocus(list, notifications.map(itemRow));
  empty.hidden = notifications.length > 0;
}

async function refreshList() {
  zone = await userTimeZone().catch(() => zone); // read once per page (or saved since)
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
  if (!open) { notice.replaceChildren(); closeOpenControl(); openFor = null; }
  button.setAttribute("aria-expanded", String(open));
  if (open && listStale) refreshList().catch((error) => console.warn(error));
  if (open) loadMutes().catch((error) => console.warn(error));
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
