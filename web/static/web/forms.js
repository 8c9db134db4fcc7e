// A refused form's messages next to their fields. A 400 from the API is {field: [message]}
// (nested for a nested field: {"quiet_hours": {"start": [...]}}); each message goes to the
// place its field's path names, else to the nearest enclosing one, else to the fallback.

/** Every (path, message) in a 400's body: ["quiet_hours.start", "Give a time ..."]. */
export function flatErrors(data, path = "") {
  if (Array.isArray(data)) return data.flatMap((item) => flatErrors(item, path));
  if (data && typeof data === "object") {
    return Object.entries(data).flatMap(([key, value]) => flatErrors(
      value, key === "non_field_errors" ? path : (path ? `${path}.${key}` : key)));
  }
  return [[path, String(data)]];
}

/**
 * ``places``: {path: {message: element, control: element}}; ``fallback``: the place for the
 * rest. ``show(data)`` writes each message next to its field and marks the control invalid
 * (its aria-describedby names the message); ``clear()`` takes them all away.
 */
export function fieldErrors(places, fallback) {
  const all = [...Object.values(places), fallback];

  function clear() {
    for (const { message, control } of all) {
      message.textContent = "";
      message.hidden = true;
      control?.removeAttribute("aria-invalid");
    }
  }

  function placeOf(path) {
    for (let parts = path.split("."); parts.length; parts.pop()) {
      const found = places[parts.join(".")];
      if (found) return found;
    }
    return fallback;
  }

  function show(data) {
    clear();
    const shown = [];
    for (const [path, text] of flatErrors(data)) {
      const place = placeOf(path);
      place.message.textContent = [place.message.textContent, text].filter(Boolean).join(" ");
      place.message.hidden = false;
      place.control?.setAttribute("aria-invalid", "true");
      shown.push(place);
    }
    shown[0]?.control?.focus();
  }

  return { clear, show };
}
