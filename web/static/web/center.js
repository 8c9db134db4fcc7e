// The notification center: the full list over the cursor-paginated API, filters, paging,
// select several and mark them read; snooze one (1 hour, tomorrow 9:00), and the "Snoozed"
// view (?snoozed=true) where each can be brought back now. Each row shows whether its event
// was acknowledged (by whom), escalated or resolved; critical and high ones can be
// acknowledged and any event resolved, for everyone it went to.
import {
  announceChange, api, categoryName, config, el, errorText, focusByKey,
  priorityBadge, repeatInfo, replaceKeepingFocus, timeElement, workspaceLabel,
} from "./api.js";
import { clockText, snoozeControl, unsnooze, userTimeZone, zonedText } from "./attention.js";
import {
  acknowledgeButton, acknowledgedText, canAcknowledge, canResolve, incidentStates,
  resolveControl, resolvedText,
} from "./incidents.js";

const form = document.getElementById("filters");
const rows = document.getElementById("center-rows");
const empty = document.getElementById("center-empty");
const errorBox = document.getElementById("center-error");
const newer = document.getElementById("page-newer");
const older = document.getElementById("page-older");
const markSelected = document.getElementById("mark-selected");
const selectAll = document.getElementById("select-all");
const status = document.getElementById("center-status");

for (const p of config.priorities) {
  document.getElementById("filter-priority").append(el("option", { value: p.value }, p.label));
}
for (const c of config.categories) {
  document.getElementById("filter-category").append(el("option", { value: c.slug }, c.name));
}

// Filters live in the page's own query string, so a filtered view can be bookmarked.
const initial = new URLSearchParams(window.location.search);
for (const name of ["unread", "priority", "category", "workspace"]) {
  if (initial.has(name)) form.elements[name].value = initial.get(name);
}
// Two views: the notifications, and the snoozed ones (each with the time it comes back).
const snoozedView = initial.get("snoozed") === "true";
form.elements.snoozed.value = snoozedView ? "true" : "";
document.getElementById(snoozedView ? "view-snoozed" : "view-inbox")
  .setAttribute("aria-current", "page");
if (snoozedView) {
  document.getElementById("center-heading").textContent = "Snoozed notifications";
  document.getElementById("actions-head").textContent = "Comes back";
  document.title = document.title.replace("Notifications", "Snoozed notifications");
  empty.textContent = "Nothing is snoozed.";
}

let current = null; // the API URL of the page shown
let etag = null;
let page = { next: null, previous: null };
let openFor = null; // whose menu shows ("<id>:snooze", "<id>:resolve"), kept across renders

function apiUrl() {
  const params = new URLSearchParams({ page_size: "20" });
  for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
  return `/api/notifications/?${params}`;
}

function selectedIds() {
  return [...rows.querySelectorAll("input[type=checkbox]:checked")].map((box) => Number(box.value));
}

function updateSelection() {
  const ids = selectedIds();
  markSelected.disabled = ids.length === 0;
  markSelected.textContent = ids.length ? `Mark ${ids.length} selected as read` : "Mark selected as read";
}

function row(n, zone) {
  const repeats = repeatInfo(n);
  const tr = el("tr", { class: n.is_read ? "" : "unread", dataset: { id: n.id } },
    el("td", {}, el("input", {
      type: "checkbox", value: n.id, "aria-label": `Select ${n.title}`, onchange: updateSelection,
      dataset: { focusKey: `${n.id}:select` },
    })),
    el("td", {}, priorityBadge(n.priority)),
    el("td", {},
      el("a", { href: `/notifications/${n.id}/`, class: "row-title",
                dataset: { focusKey: `${n.id}:open` } }, n.title),
      n.kind === "digest" ? el("span", { class: "muted" }, ` · ${n.item_count} events`) : null,
      n.is_read ? null : el("span", { class: "dot", title: "Unread" }),
      repeats ? el("div", { class: "muted" }, repeats) : null,
      incidentLine(n, zone)),
    el("td", {}, categoryName(n.category)),
    el("td", {}, workspaceLabel(n, "—")),
    el("td", {}, timeElement(n.created_at)));
  tr.append(el("td", {}, snoozedView ? unsnoozeCell(n, tr, zone) : rowActions(n, tr, zone)));
  return tr;
}

function incidentLine(n, zone) {
  const states = incidentStates(n, { zone });
  return states && el("div", { class: "row-states" }, states);
}

/** Keeps ``key``'s menu open across re-renders while it shows. */
const keepOpen = (key) => ({
  open: openFor === key,
  onToggle: (open) => {
    if (open) openFor = key;
    else if (openFor === key) openFor = null;
  },
});

/** Acknowledge (critical and high events), Resolve (events), Snooze. */
function rowActions(n, tr, zone) {
  const actions = el("div", { class: "row-actions" });
  if (canAcknowledge(n)) {
    actions.append(acknowledgeButton(n, {
      onAcknowledged: (updated) => {
        replaceRow(tr, row(updated, zone), `${n.id}:resolve`);
        announceChange(); // read now: the count follows at once
        status.textContent = acknowledgedText(updated);
      },
      onError: (error) => { status.textContent = `Not acknowledged: ${errorText(error)}`; },
    }));
  }
  if (canResolve(n)) {
    actions.append(resolveControl(n, {
      ...keepOpen(`${n.id}:resolve`),
      onResolved: ({ notification: updated, resolvedNow }) => {
        replaceRow(tr, row(updated, zone), `${n.id}:open`);
        announceChange();
        status.textContent = resolvedText(updated, resolvedNow);
      },
      onError: (error) => { status.textContent = `Not resolved: ${errorText(error)}`; },
    }));
  }
  actions.append(snoozeControl(n, {
    ...keepOpen(`${n.id}:snooze`),
    onSnoozed: async (snoozed) => {
      removeRow(tr, ".snooze-button");
      announceChange(); // out of the unread count at once
      const userZone = await userTimeZone().catch(() => undefined);
      status.textContent =
        `Snoozed “${n.title}” until ${clockText(snoozed.snoozed_until, userZone)}.`;
    },
    onError: (error) => { status.textContent = `Not snoozed: ${errorText(error)}`; },
  }));
  return actions;
}

/** Show the row ``tr`` was (or a poll's newer copy of it) as ``fresh``; the keyboard on
 * ``focusKey`` (or the closest control left) if it was in the row. */
function replaceRow(tr, fresh, focusKey) {
  const shown = rows.querySelector(`tr[data-id="${fresh.dataset.id}"]`) || tr;
  const hadFocus = shown.contains(document.activeElement)
    || document.activeElement === document.body;
  const box = (node) => node.querySelector("input[type=checkbox]");
  box(fresh).checked = box(shown).checked; // still selected
  shown.replaceWith(fresh);
  updateSelection();
  if (hadFocus) focusByKey(fresh, focusKey);
}

/** In the snoozed view: when it comes back by itself, and a button to bring it back now. */
function unsnoozeCell(n, tr, zone) {
  return el("div", { class: "snoozed-until" },
    el("span", {}, "Until ", el("time", { datetime: n.snoozed_until },
      zonedText(n.snoozed_until, zone))),
    el("button", {
      type: "button", class: "link-button", "aria-label": `Unsnooze: ${n.title}`,
      dataset: { action: "unsnooze", focusKey: `${n.id}:unsnooze` },
      onclick: async () => {
        try {
          await unsnooze(n.id);
          removeRow(tr, "button[data-action=unsnooze]");
          announceChange();
          status.textContent = `“${n.title}” is back in your notifications, unread.`;
        } catch (error) {
          status.textContent = `Not unsnoozed: ${errorText(error)}`;
        }
      },
    }, "Unsnooze"));
}

/** Take a row out now; the keyboard moves to the same control in the next row. */
function removeRow(tr, control) {
  const next = tr.nextElementSibling || tr.previousElementSibling;
  const hadFocus = tr.contains(document.activeElement) || document.activeElement === document.body;
  tr.remove();
  empty.hidden = rows.children.length > 0;
  updateSelection();
  if (hadFocus) (next?.querySelector(control) || document.getElementById("center-heading")).focus();
}

async function load(url, { keepEtag = false } = {}) {
  errorBox.hidden = true;
  try {
    const answer = await api(url, { etag: keepEtag && url === current ? etag : null });
    current = url;
    if (answer.status === 304) return;
    etag = answer.etag;
    page = { next: answer.data.next, previous: answer.data.previous };
    // Times on the user's own clock: when a snoozed one comes back, the states' dates.
    const zone = await userTimeZone().catch(() => undefined);
    replaceKeepingFocus(rows, answer.data.results.map((n) => row(n, zone)));
    empty.hidden = answer.data.results.length > 0;
    newer.disabled = !page.previous;
    older.disabled = !page.next;
    selectAll.checked = false;
    updateSelection();
  } catch (error) {
    const detail = error.data ? Object.values(error.data).flat().join(" ") : String(error);
    errorBox.textContent = detail;
    errorBox.hidden = false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
  history.replaceState(null, "", params.size ? `?${params}` : window.location.pathname);
  load(apiUrl());
});
form.addEventListener("change", (event) => {
  if (event.target.tagName === "SELECT") form.requestSubmit();
});
newer.addEventListener("click", () => page.previous && load(page.previous));
older.addEventListener("click", () => page.next && load(page.next));
selectAll.addEventListener("change", () => {
  for (const box of rows.querySelectorAll("input[type=checkbox]")) box.checked = selectAll.checked;
  updateSelection();
});
markSelected.addEventListener("click", async () => {
  const ids = selectedIds();
  if (!ids.length) return;
  await api("/api/notifications/read/", { method: "POST", body: { ids } });
  announceChange();
  load(current);
});
// The bell saw a change (a new notification, or read elsewhere): refresh this page cheaply.
window.addEventListener("datafi:bell-changed", () => current && load(current, { keepEtag: true }));

load(apiUrl());
