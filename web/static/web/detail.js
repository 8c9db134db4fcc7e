// One notification: title, priority, event type, workspace, occurred time, every payload
// field; a digest lists its events; a grouped one how often it happened and when last; a
// snoozed one when it comes back. Opening it marks it read.
import {
  absoluteTime, announceChange, api, categoryName, digestItems, el, priorityBadge, timeElement,
  workspaceLabel,
} from "./api.js";

const card = document.getElementById("detail");
const id = card.dataset.notificationId;

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

function render(n) {
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
  card.replaceChildren(el("h1", { id: "detail-title" }, n.title), facts, ...body);
  const details = card.querySelector("details.digest");
  if (details) details.open = true;
  document.title = document.title.replace("Notification", n.title);
}

async function main() {
  try {
    const { data } = await api(`/api/notifications/${id}/`);
    render(data);
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
