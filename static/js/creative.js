// The creative tools (issue 18). On the generate page: the template picker (slots, a live
// preview of the final prompt, "use" fills the prompt and the template's settings), prompt
// lint hints as you type with one-click fixes, and the total price of variations. On a batch
// page: reload while renders are still being made. The server decides everything again.
(function () {
  const grid = document.getElementById("compare-grid");
  if (grid && grid.dataset.refresh) {
    setTimeout(() => window.location.reload(), Number(grid.dataset.refresh));
  }

  const panel = document.getElementById("creative-panel");
  const form = document.getElementById("generate-form");
  if (!panel || !form) return;
  const templates = JSON.parse(document.getElementById("creative-templates").textContent);
  const bySlug = Object.fromEntries(templates.map((t) => [t.slug, t]));
  const specs = JSON.parse(document.getElementById("endpoint-specs").textContent);
  const prompt = form.querySelector('textarea[name="prompt"]');
  const select = document.getElementById("template-select");
  const slotsBox = document.getElementById("template-slots");
  const preview = document.getElementById("template-preview");
  const previewRow = document.getElementById("template-preview-row");
  const useButton = document.getElementById("template-use");
  const description = document.getElementById("template-description");
  const templateField = document.getElementById("template-field");
  const slotsField = document.getElementById("slots-field");
  const hintsList = document.getElementById("lint-hints");
  const button = document.getElementById("generate-button");
  const note = document.getElementById("variations-note");

  const checked = (name) => form.querySelector(`input[name="${name}"]:checked`);
  function setRadio(name, value) {
    const input = form.querySelector(`input[name="${name}"][value="${CSS.escape(String(value))}"]`);
    if (input && !input.disabled) { input.checked = true; input.dispatchEvent(new Event("change", { bubbles: true })); }
  }

  function slotValues() {
    const values = {};
    for (const input of slotsBox.querySelectorAll("input[data-slot]")) {
      if (input.value.trim()) values[input.dataset.slot] = input.value.trim();
    }
    return values;
  }

  function filled(template) {
    const values = slotValues();
    let text = template.text.replace(/\{([a-z_][a-z0-9_]*)\}/g, (_, name) => {
      const slot = template.slots.find((s) => s.name === name);
      return values[name] || (slot && slot.default) || `[${slot ? slot.label : name}]`;
    });
    return text.replace(/\s*,(\s*,)+/g, ",").replace(/\s+/g, " ").trim().replace(/^[,\s]+|[,\s]+$/g, "");
  }

  const varyBox = document.getElementById("vary-box");
  const varySlot = document.getElementById("vary-slot");
  function showTemplate() {
    const template = bySlug[select.value];
    slotsBox.textContent = "";
    previewRow.hidden = useButton.hidden = varyBox.hidden = !template;
    varySlot.length = 1;
    for (const slot of template ? template.slots : []) varySlot.add(new Option(slot.label, slot.name));
    description.textContent = template ? template.description : "";
    if (!template) return;
    for (const slot of template.slots) {
      const label = document.createElement("label");
      label.textContent = slot.label + (slot.required ? " *" : "");
      const input = document.createElement("input");
      input.type = "text";
      input.maxLength = 200;
      input.dataset.slot = slot.name;
      input.placeholder = slot.default || slot.help || "";
      input.addEventListener("input", () => { preview.textContent = filled(template); });
      label.append(input);
      slotsBox.append(label);
    }
    preview.textContent = filled(template);
  }

  function useTemplate() {
    const template = bySlug[select.value];
    if (!template) return;
    const missing = template.slots.filter((s) => s.required && !slotValues()[s.name]);
    if (missing.length) {
      const input = slotsBox.querySelector(`input[data-slot="${missing[0].name}"]`);
      input.setCustomValidity(`Fill in the ${missing[0].label.toLowerCase()}.`);
      input.reportValidity();
      input.addEventListener("input", () => input.setCustomValidity(""), { once: true });
      return;
    }
    const spec = specs.find((s) => s.id === template.endpoint);
    if (spec) { setRadio("mode", spec.mode); setRadio("endpoint", spec.id); }
    const settings = template.settings || {};
    for (const name of ["aspect_ratio", "duration", "resolution", "preset"]) {
      if (settings[name] != null) setRadio(name, settings[name]);
    }
    prompt.value = filled(template);
    templateField.value = template.slug;
    slotsField.value = JSON.stringify(slotValues());
    lintSoon();
  }

  select.addEventListener("change", showTemplate);
  useButton.addEventListener("click", useTemplate);
  if (select.value) showTemplate();

  // Lint: hints for the current prompt and choices, asked for after a short pause in typing.
  let timer = 0, asked = 0;
  function lintSoon() { clearTimeout(timer); timer = setTimeout(lint, 350); }
  async function lint() {
    const endpoint = checked("endpoint");
    const image = form.querySelector('input[name="image"]');
    const params = new URLSearchParams({
      prompt: prompt.value,
      endpoint: endpoint ? endpoint.value : "",
      preset: checked("preset") ? checked("preset").value : "static",
      aspect_ratio: checked("aspect_ratio") && !checked("aspect_ratio").disabled ? checked("aspect_ratio").value : "",
      images: image && image.files && image.files.length ? "1" : "0",
    });
    const ticket = ++asked;
    try {
      const response = await fetch(panel.dataset.hintsUrl + "?" + params, { headers: { Accept: "application/json" } });
      if (!response.ok || ticket !== asked) return;
      showHints((await response.json()).hints);
    } catch (e) { /* hints are advice: without them the page still works */ }
  }
  function showHints(hints) {
    hintsList.textContent = "";
    for (const hint of hints) {
      const item = document.createElement("li");
      item.dataset.rule = hint.rule;
      const text = document.createElement("span");
      text.textContent = hint.message;
      item.append(text);
      if (hint.fix) {
        const fix = document.createElement("button");
        fix.type = "button";
        fix.className = "secondary";
        fix.textContent = hint.fix.field === "preset" ? "Use " + hint.fix.value.replace("_", " ") : "Fix it";
        fix.addEventListener("click", () => {
          if (hint.fix.field === "prompt") prompt.value = hint.fix.value;
          else setRadio(hint.fix.field, hint.fix.value);
          lint();
        });
        item.append(fix);
      }
      hintsList.append(item);
    }
  }
  prompt.addEventListener("input", () => {
    // A prompt typed by hand after a template is still recorded as started from it.
    lintSoon();
  });

  // Variations: the total of N renders on the button, each held as one render would be.
  let priced = 0;
  async function priceVariations() {
    const count = checked("variations") ? Number(checked("variations").value) : 1;
    if (count <= 1) { note.textContent = ""; return; }
    const params = new URLSearchParams({ variations: String(count), endpoint: checked("endpoint") ? checked("endpoint").value : "" });
    for (const name of ["resolution", "duration", "aspect_ratio"]) {
      const input = checked(name);
      if (input && !input.disabled) params.set(name, input.value);
    }
    const ticket = ++priced;
    try {
      const response = await fetch(panel.dataset.variationsUrl + "?" + params, { headers: { Accept: "application/json" } });
      if (!response.ok || ticket !== priced) return;
      const price = await response.json();
      note.textContent = (price.allowed ? price.label.replace(/^Generate /, "") + ". " : "") + price.message;
      if (price.allowed) { button.textContent = price.label; button.disabled = false; }
    } catch (e) { /* the server prices the batch on submit */ }
  }
  form.addEventListener("change", (event) => {
    if (["mode", "endpoint", "preset", "aspect_ratio"].includes(event.target.name)) lintSoon();
    if (["variations", "mode", "endpoint", "resolution", "duration"].includes(event.target.name)) {
      // generate.js prices one render first; the total follows it.
      setTimeout(priceVariations, 150);
    }
  });
  if (prompt.value) lintSoon();
  priceVariations();
})();
