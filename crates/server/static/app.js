// certctl dashboard: small progressive enhancements. Every page works without this script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // "Select all" checkboxes tick every checkbox of the named group.
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    all.addEventListener("change", () => {
      const name = all.getAttribute("data-select-all");
      for (const box of document.querySelectorAll(`input[type=checkbox][name="${name}"]`)) {
        box.checked = all.checked;
      }
    });
  }
  // A create form with per-type configuration shows only the selected type's fieldset;
  // disabled fieldsets are not submitted.
  const typeSelect = document.querySelector("form.form select[name=type]");
  const typedSets = document.querySelectorAll("fieldset[data-type]");
  if (typeSelect && typedSets.length > 0) {
    const showSelected = () => {
      for (const set of typedSets) {
        const hidden = set.getAttribute("data-type") !== typeSelect.value;
        set.hidden = hidden;
        set.disabled = hidden;
      }
    };
    typeSelect.addEventListener("change", showSelected);
    showSelected();
  }
  // Destructive forms ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  }
});
