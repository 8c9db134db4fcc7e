// One notification: title, priority, event type, workspace, occurred time, every payload
// field; a digest lists its events; a grouped one how often it happened and when last; a
// snoozed one when it comes back. Opening it marks it read. An event's states (acknowledged
// by whom, escalated, resolved, on the user's clock), Acknowledge (critical and high) and
// Resolve; it follows changes others make (the bell's poll says when).
import {
  absoluteTime, announceChange, api, categoryName, digestItems, el, errorText, focusByKey,
  priorityBadge, timeElement, workspaceLabel,
} from "./api.js";
import { userTimeZone } from "./attention.js";
import {
  acknowledgeButton, acknowledgedText, canAcknowledge, canResolve, incidentStates,
  resolveControl, resolvedText,
} from "./incidents.js";

const card = document.getElementById("detail");
const status = document.getElementById("detail-status");
const id = card.dataset.notificationId;
let zone; // the user's time zone
let resolveOpen = false; // the resolve confirmation shows, kept across renders
let titled = false; // the tab says the notification's title
let shown = ""; // the notification as last shown (JSON)

const show = (value) =>
  typeof value === "string" ? value : JSON.stringify(value, null, 2);

function payloadList(payload) {
  if (payload === null || payload === undefined) return el("p", { class: "muted" }, "No payload.");
  if (typeof payload !== "object" || Array.isArray(payload)) {
    return el("pre", { class: "payload-value" }, show(payload));
  }
  const keys = Object.keys(payload).sort();
  if (!keys.length) return el("p", { class: "muted" }, "No payload fields.");
  return el("dl", { class: "payload", id: "payload" }, keys.map((key) => [
    el("dt", {}, key),
    el("dd", { dataset: { field: key } },
      typeof payload[key] === "string" ? payload[key] : el("pre", {}, show(payload[key]))),
  ]));
}

/** The event's states and what can be done about it, under the title. */
function incident(n) {
  const states = incidentStates(n, { zone, absolute: true });
  const actions = [];
  if (canAcknowledge(n)) {
    actions.push(acknowledgeButton(n, {
      className: "button",
      onAcknowledged: (updated) => {
        render(updated, `${id}:resolve`);
        announceChange(); // read now
        status.textContent = acknowledgedText(updated);
      },
      onError: (error) => { status.textContent = `Not acknowledged: ${errorText(error)}`; },
    }));
  }
  if (canResolve(n)) {
    actions.push(resolveControl(n, {
      className: "button button-quiet", open: resolveOpen,
      onToggle: (open) => { resolveOpen = open; },
      onResolved: ({ notification: updated, resolvedNow }) => {
        render(updated, `${id}:open`);
        announceChange();
        status.textContent = resolvedText(updated, resolvedNow);
      },
      onError: (error) => { status.textContent = `Not resolved: ${errorText(error)}`; },
    }));
  }
  if (!states && !actions.length) return null;
  return el("div", { class: "incident", id: "detail-incident" },
    states ? el("p", { class: "incident-line", id: "detail-states" }, states) : null,
    actions.length ? el("div", { class: "incident-actions" }, actions) : null);
}

/** Show ``n``; the keyboard stays on the same control (or on ``focusKey``'s). */
function render(n, focusKey) {
  const facts = el("dl", { class: "facts" },
    el("dt", {}, "Priority"), el("dd", {}, priorityBadge(n.priority)),
    el("dt", {}, "Event type"), el("dd", { id: "detail-event-type" }, el("code", {}, n.event_type)),
    el("dt", {}, "Category"), el("dd", {}, categoryName(n.category)),
    el("dt", {}, "Workspace"), el("dd", { id: "detail-workspace" }, workspaceLabel(n, "All workspaces")),
    el("dt", {}, n.kind === "digest" ? "Sent" : "Occurred"),
    el("dd", { id: "detail-occurred" },
      absoluteTime(n.occurred_at || n.created_at), " (", timeElement(n.occurred_at || n.created_at), ")"),
    n.repeat_count ? [
      el("dt", {}, "Occurrences"),
      el("dd", { id: "detail-repeats" }, el("span", { class: "repeat-count" }, `× ${n.repeat_count + 1}`),
        ` (the first and ${n.repeat_count} ${n.repeat_count === 1 ? "repeat" : "repeats"}); last `,
        absoluteTime(n.last_occurred_at), " (", timeElement(n.last_occurred_at), ")"),
    ] : null,
    n.snoozed_until ? [
      el("dt", {}, "Snoozed until"),
      el("dd", { id: "detail-snoozed" }, absoluteTime(n.snoozed_until)),
    ] : null);
  const body = n.kind === "digest"
    ? [el("h2", {}, "Events"), digestItems(n)]
    : [el("h2", {}, "Details"), payloadList(n.payload)];
  const title = el("h1", {
    id: "detail-title", tabindex: "-1", dataset: { focusKey: `${id}:open` },
  }, n.title);
  const focused = card.contains(document.activeElement) ? document.activeElement : null;
  card.replaceChildren(title, ...[incident(n), facts, ...body].filter(Boolean));
  shown = JSON.stringify(n);
  if (focused) focusByKey(card, focusKey || focused.dataset.focusKey || `${id}:open`);
  const details = card.querySelector("details.digest");
  if (details) details.open = true;
  if (!titled) document.title = document.title.replace("Notification", n.title);
  titled = true;
}

/** Show the notification again if it changed. */
async function refresh() {
  const { data } = await api(`/api/notifications/${id}/`);
  if (JSON.stringify(data) !== shown) render(data);
}

async function main() {
  try {
    const [{ data }, userZone] = await Promise.all([
      api(`/api/notifications/${id}/`), userTimeZone().catch(() => undefined)]);
    zone = userZone;
    render(data);
    // Someone acknowledged or resolved it, or it escalated: the bell's poll saw a change.
    window.addEventListener("datafi:bell-changed", () => refresh().catch(
      (error) => console.warn("detail refresh failed", error)));
    if (!data.is_read) {
      await api(`/api/notifications/${id}/read/`, { method: "POST" });
      announceChange();
    }
  } catch (error) {
    card.replaceChildren(el("h1", {}, "Not found"),
      el("p", { class: "muted" }, "This notification does not exist, or it is not yours."));
  } finally {
    card.removeAttribute("aria-busy");
  }
}

main();
