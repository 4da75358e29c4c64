// Shows only the fields the chosen endpoint takes; the server validates regardless.
(function () {
  const fields = JSON.parse(document.getElementById("endpoint-fields").textContent);
  const select = document.querySelector("select[name=endpoint]");
  const optional = ["prompt", "negative_prompt", "image", "image_url", "pikaffect", "aspect_ratio", "resolution", "duration"];
  function update() {
    const wanted = fields[select.value] || optional;
    for (const name of optional) {
      const row = document.querySelector(".field-" + name);
      if (row) row.hidden = !wanted.includes(name);
    }
  }
  select.addEventListener("change", update);
  update();
})();
