// The preferences page's time zone and quiet hours: a select of IANA zones (the stored one,
// UTC by default, with the browser's offered), quiet hours on or off with their start and
// end, saved with PUT /api/preferences/; a refusal shows its message next to the field.
import { api, config, el, errorText } from "./api.js";
import { browserTimeZone, setUserTimeZone } from "./attention.js";
import { fieldErrors } from "./forms.js";

const form = document.getElementById("quiet-form");
const zone = document.getElementById("timezone");
const useBrowserZone = document.getElementById("use-browser-zone");
const quietOn = document.getElementById("quiet-on");
const start = document.getElementById("quiet-start");
const end = document.getElementById("quiet-end");
const zoneNote = document.getElementById("quiet-zone");
const status = document.getElementById("quiet-status");
const byId = (id) => document.getElementById(id);

const errors = fieldErrors({
  timezone: { message: byId("timezone-error"), control: zone },
  "quiet_hours.start": { message: byId("quiet-start-error"), control: start },
  "quiet_hours.end": { message: byId("quiet-end-error"), control: end },
  quiet_hours: { message: byId("quiet-hours-error"), control: start },
}, { message: byId("quiet-hours-error"), control: null });

const DEFAULT_QUIET = { start: "22:00", end: "07:00" };

/** Make sure ``name`` is one of the select's options (a stored alias, the browser's). */
function offerZone(name) {
  if (![...zone.options].some((option) => option.value === name)) {
    zone.append(el("option", { value: name }, name));
  }
}

function showBrowserZone() {
  const browser = browserTimeZone();
  useBrowserZone.hidden = zone.value === browser;
  useBrowserZone.textContent = `Use this browser's time zone (${browser})`;
}

function showQuietState() {
  start.disabled = end.disabled = !quietOn.checked;
  zoneNote.textContent = `(${zone.value})`;
}

function show({ timezone, quiet_hours: quiet }) {
  offerZone(timezone);
  zone.value = timezone;
  quietOn.checked = quiet !== null;
  start.value = (quiet || DEFAULT_QUIET).start;
  end.value = (quiet || DEFAULT_QUIET).end;
  showQuietState();
  showBrowserZone();
}

/** A time left empty (or half typed) is named by its field before asking the API. */
function missingTimes() {
  if (!quietOn.checked) return null;
  const missing = {};
  if (!start.value) missing.start = ["Give the time quiet hours start."];
  if (!end.value) missing.end = ["Give the time quiet hours end."];
  return Object.keys(missing).length ? { quiet_hours: missing } : null;
}

async function save(event) {
  event.preventDefault();
  errors.clear();
  const missing = missingTimes();
  if (missing) {
    errors.show(missing);
    status.textContent = "Not saved: see the message above.";
    return;
  }
  status.textContent = "Saving…";
  const body = {
    timezone: zone.value,
    quiet_hours: quietOn.checked ? { start: start.value, end: end.value } : null,
  };
  try {
    const { data } = await api("/api/preferences/", { method: "PUT", body });
    show(data);
    setUserTimeZone(data.timezone);
    status.textContent = data.quiet_hours
      ? `Saved: quiet hours ${data.quiet_hours.start} to ${data.quiet_hours.end}, ${data.timezone}.`
      : `Saved: no quiet hours, time zone ${data.timezone}.`;
  } catch (error) {
    if (error.status === 400 && error.data) {
      errors.show(error.data);
      status.textContent = "Not saved: see the message above.";
    } else {
      status.textContent = `Not saved: ${errorText(error)}`;
    }
  }
}

/** Fill the form from the preferences' answer (``GET /api/preferences/``). */
export function initQuietHours(preferences) {
  zone.replaceChildren(...config.timeZones.map((name) => el("option", { value: name }, name)));
  offerZone(browserTimeZone());
  show(preferences);
  zone.addEventListener("change", () => { showBrowserZone(); showQuietState(); });
  useBrowserZone.addEventListener("click", () => {
    zone.value = browserTimeZone();
    showBrowserZone();
    showQuietState();
    zone.focus();
  });
  quietOn.addEventListener("change", showQuietState);
  form.addEventListener("submit", save);
  form.dataset.loaded = "true";
}
