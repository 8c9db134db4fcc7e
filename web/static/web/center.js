// The notification center: the full list over the cursor-paginated API, filters, paging,
// select several and mark them read.
import {
  announceChange, api, categoryName, config, el, priorityBadge, timeElement, workspaceLabel,
} from "./api.js";

const form = document.getElementById("filters");
const rows = document.getElementById("center-rows");
const empty = document.getElementById("center-empty");
const errorBox = document.getElementById("center-error");
const newer = document.getElementById("page-newer");
const older = document.getElementById("page-older");
const markSelected = document.getElementById("mark-selected");
const selectAll = document.getElementById("select-all");

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

let current = null; // the API URL of the page shown
let etag = null;
let page = { next: null, previous: null };

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

function row(n) {
  return el("tr", { class: n.is_read ? "" : "unread", dataset: { id: n.id } },
    el("td", {}, el("input", {
      type: "checkbox", value: n.id, "aria-label": `Select ${n.title}`, onchange: updateSelection,
    })),
    el("td", {}, priorityBadge(n.priority)),
    el("td", {},
      el("a", { href: `/notifications/${n.id}/`, class: "row-title" }, n.title),
      n.kind === "digest" ? el("span", { class: "muted" }, ` · ${n.item_count} events`) : null,
      n.is_read ? null : el("span", { class: "dot", title: "Unread" })),
    el("td", {}, categoryName(n.category)),
    el("td", {}, workspaceLabel(n, "—")),
    el("td", {}, timeElement(n.created_at)));
}

async function load(url, { keepEtag = false } = {}) {
  errorBox.hidden = true;
  try {
    const answer = await api(url, { etag: keepEtag && url === current ? etag : null });
    current = url;
    if (answer.status === 304) return;
    etag = answer.etag;
    page = { next: answer.data.next, previous: answer.data.previous };
    rows.replaceChildren(...answer.data.results.map(row));
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
