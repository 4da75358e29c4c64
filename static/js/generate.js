// The generate page: the mode switch, only the fields and choices the chosen endpoint takes,
// the image drop zone (one image, or several in order for Scenes and Keyframes), the keyframe
// transitions, and the price on the button (from /generate/price/, the estimate's code).
// The server validates everything regardless; without this script every field shows.
(function () {
  const form = document.getElementById("generate-form");
  if (!form) return;
  const specs = JSON.parse(document.getElementById("endpoint-specs").textContent);
  const byId = Object.fromEntries(specs.map((s) => [s.id, s]));
  const button = document.getElementById("generate-button");
  const note = document.getElementById("price-note");
  const optional = ["prompt", "negative_prompt", "image", "image_url", "pikaffect", "aspect_ratio",
    "resolution", "duration", "ingredients_mode", "transitions", "video", "video_url", "modify_region"];

  const checked = (name) => form.querySelector(`input[name="${name}"]:checked`);
  const radios = (name) => Array.from(form.querySelectorAll(`input[name="${name}"]`));

  function endpoint() {
    const input = checked("endpoint");
    return input ? byId[input.value] : specs[0];
  }

  function showModels() {
    const modeInput = checked("mode");
    const mode = modeInput ? modeInput.value : endpoint().mode;
    document.getElementById("mode-hint").textContent = modeInput ? modeInput.dataset.hint : "";
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
    images.setLimit(spec.images.max);
    showTransitions();
    const leaveOut = form.querySelector('[name="negative_prompt"]');
    if (leaveOut) leaveOut.placeholder = spec.negative_default ? `Left out by default: ${spec.negative_default}` : "";
  }

  // Keyframes: one transition row fewer than there are keyframes (at least one).
  function transitionCount() {
    return Math.min(Math.max(images.count() - 1, 1), 4);
  }
  function showTransitions() {
    const row = form.querySelector('[data-field="transitions"]');
    if (row.hidden) return;
    const count = transitionCount();
    let total = 0;
    for (const item of row.querySelectorAll(".transition")) {
      const shown = Number(item.dataset.transition) <= count;
      item.hidden = !shown;
      for (const input of item.querySelectorAll("input")) input.disabled = !shown;
      if (shown) total += Number(item.querySelector("input[type=number]").value) || 0;
    }
    document.getElementById("transition-total").textContent = "· " + total + " s in all";
  }
  function transitionSeconds() {
    return Array.from(form.querySelectorAll('.transition:not([hidden]) input[type=number]')).map((i) => i.value);
  }

  let asked = 0;
  async function updatePrice() {
    const spec = endpoint();
    const params = new URLSearchParams({ endpoint: spec.id });
    for (const name of ["resolution", "duration"]) {
      const input = checked(name);
      if (input && !input.disabled) params.set(name, input.value);
    }
    if (spec.fields.includes("transitions")) params.set("transitions", transitionSeconds().join(","));
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
  form.addEventListener("input", (event) => {
    if (/^t\d_duration$/.test(event.target.name)) { showTransitions(); updatePrice(); }
  });

  // The images, in order: kept ones (a draft token from the last submit) and new files. The
  // file input carries the new files, `image_draft` the kept tokens, `image_order` how they
  // interleave ("d u d"), so the server rebuilds the order the thumbnails show.
  const images = (function () {
    const zone = document.getElementById("dropzone");
    const file = zone.querySelector("input[type=file]");
    const list = document.getElementById("thumbs");
    const text = document.getElementById("drop-text");
    const label = document.getElementById("image-label");
    const draftField = form.querySelector("input[name=image_draft]");
    const orderField = form.querySelector("input[name=image_order]");
    let items = Array.from(list.querySelectorAll("li")).map((li) => ({ token: li.dataset.token, src: li.querySelector("img").src }));
    let limit = 1;

    function sync() {
      const transfer = new DataTransfer();
      for (const item of items) if (item.file) transfer.items.add(item.file);
      file.files = transfer.files;
      draftField.value = items.filter((i) => i.token).map((i) => i.token).join(" ");
      orderField.value = items.map((i) => (i.token ? "d" : "u")).join(" ");
    }
    function render() {
      list.replaceChildren();
      items.forEach((item, index) => {
        const li = document.createElement("li");
        const img = document.createElement("img");
        img.src = item.src;
        img.alt = (limit > 1 ? "Image " + (index + 1) : "The chosen image") + (item.file ? ": " + item.file.name : ", kept from your last try");
        li.append(img);
        if (limit > 1) {
          const tools = document.createElement("span");
          tools.className = "thumb-tools";
          if (index > 0) tools.append(tool("←", "Move image " + (index + 1) + " earlier", () => move(index, -1)));
          tools.append(tool("×", "Remove image " + (index + 1), () => { items.splice(index, 1); changed(); }));
          li.append(tools);
        }
        list.append(li);
      });
    }
    let touched = false; // until then the server's words stand ("Your image is kept")
    function describe() {
      if (!touched && items.length) return;
      if (items.length) {
        text.textContent = limit > 1
          ? items.length + " of up to " + limit + " images, in this order · drop, paste or pick to add more"
          : "Drop, paste or pick another image to replace it";
      } else {
        text.textContent = limit > 1
          ? "Drop images, paste them, or click to pick · up to " + limit + ", in the order you add them"
          : "Drop an image, paste it, or click to pick one · JPEG, PNG or WebP";
      }
    }
    function tool(symbol, name, action) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "secondary tool";
      b.textContent = symbol;
      b.setAttribute("aria-label", name);
      b.addEventListener("click", action);
      return b;
    }
    function move(index, by) {
      const [item] = items.splice(index, 1);
      items.splice(index + by, 0, item);
      changed();
    }
    function changed() {
      touched = true;
      sync();
      render();
      describe();
      showTransitions();
      updatePrice();
    }
    function add(files) {
      const chosen = Array.from(files || []).filter((f) => f.type.startsWith("image/"));
      if (!chosen.length) return;
      const added = chosen.map((f) => ({ file: f, src: URL.createObjectURL(f) }));
      items = limit > 1 ? items.concat(added).slice(0, limit) : added.slice(-1);
      changed();
    }
    file.addEventListener("change", () => {
      // The picker replaces the input's files: take them as additions to the list.
      const picked = Array.from(file.files).filter((f) => !items.some((i) => i.file === f));
      add(picked);
    });
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); add(e.dataTransfer.files); });
    document.addEventListener("paste", (e) => {
      if (!endpoint().fields.includes("image")) return;
      const files = e.clipboardData && e.clipboardData.files;
      if (files && files.length) add(files);
    });
    return {
      count: () => items.length,
      setLimit(max) {
        limit = Math.max(max, 1);
        file.multiple = limit > 1;
        label.textContent = limit > 1 ? "Images, in order (up to " + limit + ")" : "Image";
        if (items.length > limit) items = items.slice(-limit);
        sync();
        render();
        describe();
      },
    };
  })();

  update();
})();
