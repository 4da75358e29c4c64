// The generate page: the mode switch, only the fields and choices the chosen endpoint takes,
// the image drop zone, and the price on the button (from /generate/price/, the estimate's code).
// The server validates everything regardless; without this script every field shows.
(function () {
  const form = document.getElementById("generate-form");
  if (!form) return;
  const specs = JSON.parse(document.getElementById("endpoint-specs").textContent);
  const byId = Object.fromEntries(specs.map((s) => [s.id, s]));
  const button = document.getElementById("generate-button");
  const note = document.getElementById("price-note");
  const optional = ["prompt", "negative_prompt", "image", "image_url", "pikaffect", "aspect_ratio", "resolution", "duration"];

  const checked = (name) => form.querySelector(`input[name="${name}"]:checked`);
  const radios = (name) => Array.from(form.querySelectorAll(`input[name="${name}"]`));

  function endpoint() {
    const input = checked("endpoint");
    return input ? byId[input.value] : specs[0];
  }

  function showModels() {
    const mode = checked("mode") ? checked("mode").value : endpoint().mode;
    let current = checked("endpoint");
    for (const input of radios("endpoint")) {
      const label = input.closest(".chip");
      const match = byId[input.value].mode === mode;
      label.hidden = !match;
      label.querySelector("span").textContent = label.querySelector("span").dataset.short;
      if (current && !match && current === input) current = null;
    }
    if (!current) {
      const first = radios("endpoint").find((i) => byId[i.value].mode === mode);
      if (first) first.checked = true;
    }
  }

  function showFields() {
    const spec = endpoint();
    for (const name of optional) {
      const row = form.querySelector(`[data-field="${name}"]`);
      if (!row) continue;
      const wanted = spec.fields.includes(name);
      row.hidden = !wanted;
      // Hidden inputs are not sent, so a file chosen for another mode never reaches the server.
      for (const input of row.querySelectorAll("input, select, textarea")) input.disabled = !wanted;
      const choices = spec.choices[name];
      if (!wanted || !choices) continue;
      let keep = false;
      for (const input of radios(name)) {
        input.disabled = !choices.includes(input.value);
        input.closest(".chip").hidden = input.disabled;
        if (input.checked && !input.disabled) keep = true;
      }
      if (!keep) {
        const fallback = radios(name).find((i) => i.value === spec.defaults[name]) || radios(name).find((i) => !i.disabled);
        if (fallback) fallback.checked = true;
      }
    }
  }

  let asked = 0;
  async function updatePrice() {
    const spec = endpoint();
    const params = new URLSearchParams({ endpoint: spec.id });
    for (const name of ["resolution", "duration"]) {
      const input = checked(name);
      if (input && !input.disabled) params.set(name, input.value);
    }
    const ticket = ++asked;
    try {
      const response = await fetch(form.dataset.priceUrl + "?" + params, { headers: { Accept: "application/json" } });
      if (!response.ok || ticket !== asked) return;
      const price = await response.json();
      button.textContent = price.label;
      button.disabled = !price.allowed;
      button.dataset.credits = price.credits == null ? "" : price.credits;
      note.textContent = price.message;
      if (price.action === "billing") {
        const link = document.createElement("a");
        link.href = "/billing/";
        link.textContent = "Credits and plans";
        note.append(" ", link);
      }
    } catch (e) {
      button.disabled = false; // the server still decides on submit
    }
  }

  function update() {
    showModels();
    showFields();
    updatePrice();
  }
  form.addEventListener("change", (event) => {
    if (["mode", "endpoint", "resolution", "duration"].includes(event.target.name)) update();
  });

  // Drop zone: drop, paste or pick; a thumbnail of what was chosen.
  const zone = document.getElementById("dropzone");
  const file = zone.querySelector("input[type=file]");
  const thumb = document.getElementById("thumb");
  const text = document.getElementById("drop-text");
  function choose(files) {
    if (!files || !files.length) return;
    const transfer = new DataTransfer();
    transfer.items.add(files[0]);
    file.files = transfer.files;
    preview();
  }
  function preview() {
    const chosen = file.files[0];
    if (!chosen) return;
    thumb.src = URL.createObjectURL(chosen);
    thumb.hidden = false;
    text.textContent = chosen.name + " · drop, paste or pick another to replace it";
  }
  file.addEventListener("change", preview);
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); choose(e.dataTransfer.files); });
  document.addEventListener("paste", (e) => {
    if (!endpoint().fields.includes("image")) return;
    const files = e.clipboardData && e.clipboardData.files;
    if (files && files.length) choose(files);
  });

  update();
})();
