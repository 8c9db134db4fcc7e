// Incidents on the pages (the bell, the center, the detail page): Acknowledge a critical or
// high event for everyone it went to, Resolve any event (after a confirmation: receivers
// that got it are told), and each notification's states at a glance: "Acknowledged by
// alice", "Escalated", "Resolved", each a labelled badge with when, on the user's clock.
import { api, el, relativeTime } from "./api.js";
import { closeOpenControl, disclosure, zonedText } from "./attention.js";

/** The priorities whose events people acknowledge (and that escalate). */
export const ACKNOWLEDGED_PRIORITIES = ["critical", "high"];

const isEvent = (n) => n.kind !== "digest" && Boolean(n.event_id);

/** Offer Acknowledge: one event's notification, critical or high, neither acknowledged
 * nor resolved yet (a digest mixes events: the API refuses it). */
export const canAcknowledge = (n) => isEvent(n) && ACKNOWLEDGED_PRIORITIES.includes(n.priority)
  && !n.acknowledged_at && !n.resolved_at;

/** Offer Resolve: one event's notification not resolved yet. */
export const canResolve = (n) => isEvent(n) && !n.resolved_at;

/** Acknowledge ``notification``'s event for everyone (your copy is read): the notification
 * as it is now (``acknowledged_by`` says who, if someone was first). */
export async function acknowledge(notification) {
  const { data } = await api(`/api/notifications/${notification.id}/acknowledge/`,
    { method: "POST" });
  return data;
}

/** Resolve ``notification``'s event for everyone: the notification with the event's states
 * as they are now, and ``resolvedNow`` (false: it was resolved already). */
export async function resolve(notification) {
  const { data } = await api(`/api/events/${notification.event_id}/resolve/`, { method: "POST" });
  return {
    notification: {
      ...notification, acknowledged_at: data.acknowledged_at,
      acknowledged_by: data.acknowledged_by, escalated_at: data.escalated_at,
      resolved_at: data.resolved_at,
    },
    resolvedNow: data.resolved_now,
  };
}

/**
 * A notification's states as labelled badges (``.incident-state[data-state]``), in the
 * order they happened, or null when it has none. The time is relative ("2 min ago", the
 * date on the user's clock on hover), or with ``absolute`` the date on the user's clock
 * ``zone`` and then the relative time (the detail page).
 */
export function incidentStates(n, { zone, absolute = false } = {}) {
  const when = (iso) => (absolute
    ? [" · ", el("time", { datetime: iso }, zonedText(iso, zone)), ` (${relativeTime(iso)})`]
    : [" ", el("time", { datetime: iso, title: zonedText(iso, zone) }, relativeTime(iso))]);
  const states = [
    n.escalated_at && { key: "escalated", at: n.escalated_at, label: "Escalated" },
    n.acknowledged_at && {
      key: "acknowledged", at: n.acknowledged_at, label: "Acknowledged",
      detail: n.acknowledged_by ? ` by ${n.acknowledged_by}` : "",
    },
    n.resolved_at && { key: "resolved", at: n.resolved_at, label: "Resolved" },
  ].filter(Boolean).sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  if (!states.length) return null;
  return el("span", { class: "incident-states" }, states.map((state) => el("span", {
    class: "incident-state", dataset: { state: state.key },
  }, el("strong", { class: "incident-state-label" }, state.label), state.detail, when(state.at))));
}

/**
 * An "Acknowledge" button (``className``: how it looks). ``onAcknowledged(notification)``
 * runs after the API accepted, ``onError(error)`` when it refused; a second press while
 * one is on its way does nothing.
 */
export function acknowledgeButton(n, { onAcknowledged, onError, className = "link-button" } = {}) {
  let busy = false;
  return el("button", {
    type: "button", class: `${className} acknowledge-button`,
    "aria-label": `Acknowledge: ${n.title}`,
    dataset: { action: "acknowledge", focusKey: `${n.id}:acknowledge` },
    onclick: async (event) => {
      const node = event.currentTarget;
      if (busy) return;
      busy = true;
      node.setAttribute("aria-disabled", "true");
      try {
        onAcknowledged?.(await acknowledge(n));
      } catch (error) {
        onError?.(error);
      } finally {
        busy = false;
        node.removeAttribute("aria-disabled");
      }
    },
  }, "Acknowledge");
}

/**
 * A "Resolve" button that asks first (a ``disclosure`` with "Resolve for everyone": it is
 * everyone's, and receivers that got the event are told). ``onResolved({notification,
 * resolvedNow})`` runs after the API accepted, ``onError(error)`` when it refused; ``open``
 * and ``onToggle(open)`` as for ``snoozeControl``.
 */
export function resolveControl(n, {
  onResolved, onError, open = false, onToggle, className = "link-button",
} = {}) {
  const menuId = `resolve-menu-${n.id}-${Math.random().toString(36).slice(2, 8)}`;
  const button = el("button", {
    type: "button", class: `${className} resolve-button`, "aria-expanded": "false",
    "aria-controls": menuId, "aria-label": `Resolve: ${n.title}`,
    dataset: { action: "resolve", focusKey: `${n.id}:resolve` },
  }, "Resolve");
  let busy = false;
  const confirm = el("button", {
    type: "button", class: "resolve-confirm",
    dataset: { action: "resolve-confirm", focusKey: `${n.id}:resolve:confirm` },
    onclick: async () => {
      if (busy) return;
      busy = true;
      confirm.setAttribute("aria-disabled", "true");
      try {
        const resolved = await resolve(n);
        closeOpenControl();
        onResolved?.(resolved);
      } catch (error) {
        onError?.(error);
      } finally {
        busy = false;
        confirm.removeAttribute("aria-disabled");
      }
    },
  }, "Resolve for everyone");
  const menu = el("div", {
    class: "resolve-menu", id: menuId, role: "group", "aria-label": `Resolve ${n.title}`,
    hidden: true,
  }, confirm);
  const root = el("div", { class: "resolve" }, button, menu);
  disclosure({ root, button, menu, open, onToggle });
  return root;
}

/** What the page says after an acknowledgement (someone may have been first). */
export const acknowledgedText = (n) =>
  `“${n.title}” is acknowledged by ${n.acknowledged_by || "someone"}: everyone it went to sees it.`;

/** What the page says after a resolution. */
export const resolvedText = (n, resolvedNow) => (resolvedNow
  ? `Resolved “${n.title}” for everyone it went to.`
  : `“${n.title}” was resolved already.`);
