// Preferences: per category, in-app and email on or off (PUT /api/preferences/).
import { api, categoryName, el } from "./api.js";

const rows = document.getElementById("prefs-rows");
const status = document.getElementById("prefs-status");
const CHANNELS = [["in_app", "In-app"], ["email", "Email"]];
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
  rows.replaceChildren(...Object.keys(categories).map((slug) => el("tr", { dataset: { category: slug } },
    el("th", { scope: "row" }, categoryName(slug)),
    ...CHANNELS.map(([channel, label]) => el("td", {}, toggle(slug, channel, label))))));
}

async function save(slug, channel, input) {
  const wanted = { ...categories[slug], [channel]: input.checked };
  status.textContent = "Saving…";
  try {
    const { data } = await api("/api/preferences/", {
      method: "PUT", body: { categories: { [slug]: wanted } },
    });
    categories = data.categories;
    status.textContent = `Saved: ${categoryName(slug)} ${channel === "email" ? "email" : "in-app"} ${input.checked ? "on" : "off"}.`;
  } catch (error) {
    input.checked = !input.checked;
    status.textContent = "Not saved: " + (error.data ? JSON.stringify(error.data) : error.message);
  }
}

async function main() {
  const { data } = await api("/api/preferences/");
  categories = data.categories;
  render();
  document.getElementById("prefs-table").dataset.loaded = "true";
}

main();
