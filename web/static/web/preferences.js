// Preferences: per category, each channel users choose on or off (PUT /api/preferences/).
// The channels come with the answer (its "channels": name and label), so a channel an app
// adds shows here as a column of its own. Below: the time zone and quiet hours
// (quiet-hours.js) and the user's mutes (mutes.js).
import { api, categoryName, el } from "./api.js";
import { setUserTimeZone } from "./attention.js";
import { initMutes } from "./mutes.js";
import { initQuietHours } from "./quiet-hours.js";

const head = document.getElementById("prefs-head");
const rows = document.getElementById("prefs-rows");
const status = document.getElementById("prefs-status");
let channels = [];
let categories = {};

function toggle(slug, channel, label) {
  return el("label", { class: "switch" },
    el("input", {
      type: "checkbox", role: "switch", name: `${slug}.${channel}`,
      checked: categories[slug][channel],
      "aria-label": `${label} notifications for ${categoryName(slug)}`,
      onchange: (event) => save(slug, channel, event.target),
    }),
    el("span", { class: "switch-track", "aria-hidden": "true" }));
}

function render() {
  head.replaceChildren(el("th", { scope: "col" }, "Category"),
    ...channels.map(({ label }) => el("th", { scope: "col" }, label)));
  rows.replaceChildren(...Object.keys(categories).map((slug) => el("tr", { dataset: { category: slug } },
    el("th", { scope: "row" }, categoryName(slug)),
    ...channels.map(({ name, label }) => el("td", {}, toggle(slug, name, label))))));
}

async function save(slug, channel, input) {
  const wanted = { ...categories[slug], [channel]: input.checked };
  status.textContent = "Saving…";
  try {
    const { data } = await api("/api/preferences/", {
      method: "PUT", body: { categories: { [slug]: wanted } },
    });
    categories = data.categories;
    const label = channels.find(({ name }) => name === channel)?.label ?? channel;
    status.textContent = `Saved: ${categoryName(slug)} ${label.toLowerCase()} ${input.checked ? "on" : "off"}.`;
  } catch (error) {
    input.checked = !input.checked;
    status.textContent = "Not saved: " + (error.data ? JSON.stringify(error.data) : error.message);
  }
}

async function main() {
  const { data } = await api("/api/preferences/");
  categories = data.categories;
  channels = data.channels;
  render();
  document.getElementById("prefs-table").dataset.loaded = "true";
  setUserTimeZone(data.timezone);
  initQuietHours(data);
  await initMutes();
}

main();
