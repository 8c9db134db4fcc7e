// The preferences page's mutes: the user's own (what, until when) with Remove, and a small
// form to add one (an event type, a category or one of their workspaces; for a while or until
// removed), all through /api/mutes/.
import { api, categoryName, config, el, errorText } from "./api.js";
import { muteRemove, muteTarget, userTimeZone, zonedText } from "./attention.js";
import { fieldErrors } from "./forms.js";

const rows = document.getElementById("mutes-rows");
const empty = document.getElementById("mutes-empty");
const form = document.getElementById("mute-form");
const what = document.getElementById("mute-what");
const duration = document.getElementById("mute-for");
const status = document.getElementById("mutes-status");
const byId = (id) => document.getElementById(id);

const whatError = { message: byId("mute-what-error"), control: what };
const errors = fieldErrors({
  event_type: whatError, category: whatError, workspace_id: whatError,
  until: { message: byId("mute-for-error"), control: duration },
}, whatError);

const workspaceName = (id) => (config.workspaces.find((w) => w.id === id) || {}).name || id;
const describe = (mute) => muteTarget(mute, { categoryName, workspaceName });

function fillChoices() {
  const group = (label, options) => (options.length ? el("optgroup", { label }, options) : null);
  what.replaceChildren(...[
    group("Event types", config.eventTypes.map((t) => el("option", {
      value: `event_type:${t.key}`,
    }, `${t.label} (${categoryName(t.category)})`))),
    group("Categories", config.categories.map((c) => el("option", {
      value: `category:${c.slug}`,
    }, `${c.name}: every event of it`))),
    group("Workspaces", config.workspaces.map((w) => el("option", {
      value: `workspace_id:${w.id}`,
    }, `${w.name}: every event in it`))),
  ].filter(Boolean));
}

function untilText(until, zone) {
  if (until === null) return "Until you remove it";
  const when = zonedText(until, zone);
  return Date.parse(until) > Date.now() ? when : `Ended ${when}`;
}

function row(mute, zone) {
  const { kind, name } = describe(mute);
  return el("tr", { dataset: { id: mute.id } },
    el("th", { scope: "row" }, el("span", { class: "mute-name" }, name), " ",
      el("span", { class: "muted" }, `· ${kind.toLowerCase()}`)),
    el("td", { class: "mute-until" }, untilText(mute.until, zone)),
    el("td", {}, el("button", {
      type: "button", class: "button button-quiet", "aria-label": `Remove: ${name}`,
      dataset: { action: "remove" },
      onclick: () => remove(mute),
    }, "Remove")));
}

async function load() {
  const [{ data: mutes }, zone] = await Promise.all([
    api("/api/mutes/"), userTimeZone().catch(() => "UTC")]);
  rows.replaceChildren(...mutes.map((mute) => row(mute, zone)));
  empty.hidden = mutes.length > 0;
  byId("mutes-table").hidden = mutes.length === 0;
  byId("mutes-table").dataset.loaded = "true";
}

async function remove(mute) {
  const { name } = describe(mute);
  const next = rows.querySelector(`tr[data-id="${mute.id}"]`);
  const after = next?.nextElementSibling?.dataset.id || next?.previousElementSibling?.dataset.id;
  try {
    await muteRemove(mute.id);
    status.textContent = `Removed: ${name} reaches you again.`;
  } catch (error) {
    status.textContent = `Not removed: ${errorText(error)}`;
  }
  await load();
  (rows.querySelector(`tr[data-id="${after}"] button`) || what).focus();
}

async function add(event) {
  event.preventDefault();
  errors.clear();
  const [field, value] = what.value.split(/:(.*)/s);
  const minutes = Number(duration.value);
  const ends = minutes ? new Date(Date.now() + minutes * 60000).toISOString() : null;
  try {
    const { data } = await api("/api/mutes/", { method: "POST", body: { [field]: value, until: ends } });
    const zone = await userTimeZone().catch(() => "UTC");
    const until = data.until === null ? "you remove it" : untilText(data.until, zone);
    status.textContent = `Muted ${describe(data).name} until ${until}.`;
    await load();
  } catch (error) {
    if (error.status === 400 && error.data) errors.show(error.data);
    status.textContent = `Not muted: ${errorText(error)}`;
  }
}

export function initMutes() {
  fillChoices();
  form.addEventListener("submit", add);
  // "Mute this kind" in the bell, on this page: the list follows.
  window.addEventListener("datafi:mutes-changed", () => load().catch((e) => console.warn(e)));
  return load();
}
