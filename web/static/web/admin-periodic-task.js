// django-celery-beat's periodic task form (templates/admin/djcelery/), what its inline script
// did: the chosen crontab in words under the crontab field, and the read-only translation
// field hidden. A static file, because the Content-Security-Policy refuses inline scripts.
"use strict";
{
  const crontabs = JSON.parse(document.getElementById("readable-crontabs").textContent);
  const select = document.getElementById("id_crontab");
  const help = document.querySelector(".field-crontab .help");
  const translation = document.querySelector(".field-crontab_translation");
  if (translation) translation.style.display = "none";
  if (select && help) {
    const original = help.textContent.trim();
    select.addEventListener("change", () => {
      const words = crontabs[select.value];
      if (words) help.replaceChildren(original, document.createElement("br"), `Translation: ${words}`);
      else help.replaceChildren(original);
    });
  }
}
