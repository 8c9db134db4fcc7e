// Attention controls shared by the bell and the notification center: snooze (1 hour, or
// tomorrow 9:00 in the user's own time zone), unsnooze, "Mute this kind", and the time zone
// arithmetic behind "tomorrow 9:00", done with Intl so that it holds across daylight saving.
import { api, el, eventTypeLabel } from "./api.js";

// --- time zones -----------------------------------------------------------------------------

const wallFormats = new Map();

/** The wall clock in ``zone`` at ``instant`` (ms since the epoch): {year, month, day, hour,
 * minute, second}, month 1-12, hour 0-23. */
export function wallClock(instant, zone) {
  let format = wallFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric",
    });
    wallFormats.set(zone, format);
  }
  const parts = {};
  for (const { type, value } of format.formatToParts(new Date(instant))) parts[type] = Number(value);
  return { year: parts.year, month: parts.month, day: parts.day, hour: parts.hour,
           minute: parts.minute, second: parts.second };
}

const asUtc = (w) => Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second || 0);

/** ``zone``'s offset from UTC at ``instant``, in minutes (e.g. 120 for +02:00). */
export function offsetMinutes(instant, zone) {
  const whole = Math.floor(instant / 1000) * 1000;
  return Math.round((asUtc(wallClock(whole, zone)) - whole) / 60000);
}

/**
 * The instant at which ``zone``'s clocks show year-month-day hour:minute. On a night the
 * clocks repeat that time, its first occurrence; on a night they skip it, the moment of the
 * change (as the server does for the end of quiet hours).
 */
export function zonedInstant(zone, { year, month, day, hour, minute = 0 }) {
  const target = Date.UTC(year, month - 1, day, hour, minute);
  // The offsets in force around that wall time (UTC offsets span -12h..+14h; zones change
  // at most once in such a window).
  const offsets = new Set([offsetMinutes(target - 14 * 3600000, zone),
                           offsetMinutes(target + 14 * 3600000, zone)]);
  const exact = [...offsets].map((offset) => target - offset * 60000)
    .filter((instant) => asUtc(wallClock(instant, zone)) === target);
  if (exact.length) return Math.min(...exact);
  // Skipped: the first instant whose wall clock is at or past the target (the change).
  const bounds = [...offsets].map((offset) => target - offset * 60000);
  let low = Math.min(...bounds);
  let high = Math.max(...bounds);
  while (high - low > 1000) {
    const middle = low + Math.floor((high - low) / 2000) * 1000;
    if (asUtc(wallClock(middle, zone)) >= target) high = middle; else low = middle;
  }
  return high;
}

const pad = (n, width = 2) => String(Math.abs(n)).padStart(width, "0");

/** ``instant`` as ISO-8601 with ``zone``'s offset then: 2026-03-30T09:00:00+02:00. */
export function isoInZone(instant, zone) {
  const w = wallClock(instant, zone);
  const offset = offsetMinutes(instant, zone);
  const sign = offset < 0 ? "-" : "+";
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}:` +
    `${pad(w.second)}${sign}${pad(Math.trunc(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}

/** Tomorrow at ``hour``:00 on ``zone``'s clocks, seen from ``now``: {instant, iso}. */
export function tomorrowAt(zone, hour, now = Date.now()) {
  const today = wallClock(now, zone);
  const next = new Date(Date.UTC(today.year, today.month - 1, today.day + 1));
  const instant = zonedInstant(zone, {
    year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: next.getUTCDate(), hour,
  });
  return { instant, iso: isoInZone(instant, zone) };
}

/** A time as the user reads it on their own clock: "Tue 9:00" (with the zone's name when it
 * is not the browser's). */
export function clockText(iso, zone = browserTimeZone()) {
  const options = { weekday: "short", hour: "numeric", minute: "2-digit", timeZone: zone };
  const text = new Intl.DateTimeFormat("en", options).format(new Date(iso));
  return zone === browserTimeZone() ? text : `${text} (${zone})`;
}

/** A date and time on the user's clock: "Dec 5, 2026, 9:00 AM" (with the zone's name when
 * it is not the browser's). */
export function zonedText(iso, zone = browserTimeZone()) {
  const options = { dateStyle: "medium", timeStyle: "short", timeZone: zone };
  const text = new Intl.DateTimeFormat("en", options).format(new Date(iso));
  return zone === browserTimeZone() ? text : `${text} (${zone})`;
}

export const browserTimeZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

let userZone = null;

/** The user's time zone from ``/api/preferences/`` (read once per page). */
export function userTimeZone() {
  userZone ||= api("/api/preferences/").then(({ data }) => data.timezone || "UTC")
    .catch((error) => { userZone = null; throw error; });
  return userZone;
}

/** The preferences page saved another zone: later snoozes use it. */
export function setUserTimeZone(zone) { userZone = Promise.resolve(zone); }

// --- snooze -----------------------------------------------------------------------------

export const SNOOZE_PRESETS = [
  { key: "hour", label: "1 hour", body: async () => ({ minutes: 60 }) },
  {
    key: "tomorrow", label: "Tomorrow 9:00",
    body: async () => ({ until: tomorrowAt(await userTimeZone(), 9).iso }),
  },
];

/** Snooze notification ``id`` with ``preset`` (one of SNOOZE_PRESETS); the API's answer. */
export async function snooze(id, preset) {
  const { data } = await api(`/api/notifications/${id}/snooze/`, {
    method: "POST", body: await preset.body(),
  });
  return data;
}

export async function unsnooze(id) {
  const { data } = await api(`/api/notifications/${id}/unsnooze/`, { method: "POST" });
  return data;
}

let openControl = null; // the one disclosure (snooze presets, a resolve's confirmation) shown

/** Hide the disclosure that shows, if any (``focus``: back on its button). */
export function closeOpenControl({ focus = false } = {}) {
  if (!openControl) return;
  const { button, menu, onToggle } = openControl;
  openControl = null;
  menu.hidden = true;
  button.setAttribute("aria-expanded", "false");
  onToggle?.(false);
  if (focus) button.focus();
}

document.addEventListener("click", (event) => {
  if (openControl && !openControl.root.contains(event.target)) closeOpenControl();
});

/**
 * Make ``button`` show and hide ``menu`` inside ``root`` (a disclosure: Tab moves through
 * the menu, Escape hides it and puts the keyboard back on the button, a click elsewhere
 * hides it); one shows at a time on a page. ``open`` shows it at once (a re-rendered list
 * keeps an open one open); ``onToggle(open)`` says when it shows or hides; ``onShow()``
 * runs each time it shows.
 */
export function disclosure({ root, button, menu, open = false, onToggle, onShow }) {
  const control = { root, button, menu, onToggle };
  function show() {
    if (openControl && openControl.root !== root) closeOpenControl();
    openControl = control;
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    onToggle?.(true);
    onShow?.();
  }
  button.addEventListener("click", () => {
    if (menu.hidden) show(); else closeOpenControl();
  });
  root.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !menu.hidden) {
      event.stopPropagation(); // the bell's panel stays open: only the menu closes
      closeOpenControl({ focus: true });
    }
  });
  if (open) show();
}

/**
 * A "Snooze" button that shows its presets (a ``disclosure``). ``onSnoozed(notification,
 * preset)`` runs after the API accepted; ``onError(error)`` when it refused. ``open`` shows
 * the presets at once (a re-rendered list keeps an open control open); ``onToggle(open)``
 * says when they show or hide.
 */
export function snoozeControl(notification, { onSnoozed, onError, open = false, onToggle } = {}) {
  const menuId = `snooze-menu-${notification.id}-${Math.random().toString(36).slice(2, 8)}`;
  const button = el("button", {
    type: "button", class: "link-button snooze-button", "aria-expanded": "false",
    "aria-controls": menuId, "aria-label": `Snooze: ${notification.title}`,
    dataset: { focusKey: `${notification.id}:snooze`, action: "snooze" },
  }, "Snooze");
  const hint = el("span", { class: "snooze-hint muted" });
  const choices = SNOOZE_PRESETS.map((preset) => el("button", {
    type: "button", class: "snooze-choice", dataset: {
      preset: preset.key, focusKey: `${notification.id}:snooze:${preset.key}`,
    },
    onclick: async (event) => {
      const choice = event.currentTarget;
      choice.disabled = true;
      try {
        const snoozed = await snooze(notification.id, preset);
        closeOpenControl();
        onSnoozed?.(snoozed, preset);
      } catch (error) {
        onError?.(error);
      } finally {
        choice.disabled = false;
      }
    },
  }, preset.label, preset.key === "tomorrow" ? hint : null));
  const menu = el("div", {
    class: "snooze-menu", id: menuId, role: "group",
    "aria-label": `Snooze ${notification.title} until`, hidden: true,
  }, choices);
  const root = el("div", { class: "snooze" }, button, menu);
  disclosure({
    root, button, menu, open, onToggle,
    onShow: () => userTimeZone().then((zone) => {
      hint.textContent = zone === browserTimeZone() ? "" : ` (${zone})`;
    }).catch(() => {}),
  });
  return root;
}

// --- mutes --------------------------------------------------------------------------------

/** Mute event type ``key`` until removed; the mute the API made. */
export async function muteEventType(key) {
  const { data } = await api("/api/mutes/", { method: "POST", body: { event_type: key, until: null } });
  return data;
}

export async function muteRemove(id) {
  await api(`/api/mutes/${id}/`, { method: "DELETE" });
}

/** What a mute silences, as people know it: "Query failed", "Queries", "Analytics". */
export function muteTarget(mute, { categoryName, workspaceName }) {
  if (mute.event_type) return { kind: "Event type", name: eventTypeLabel(mute.event_type) };
  if (mute.category) return { kind: "Category", name: categoryName(mute.category) };
  return { kind: "Workspace", name: workspaceName(mute.workspace_id) };
}
