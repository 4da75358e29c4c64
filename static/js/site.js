// Small behaviours shared by pages, without inline script (the CSP allows none).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// Gallery: a clip plays, muted, while the pointer is over it; the poster shows otherwise.
for (const clip of document.querySelectorAll(".gallery a.clip[data-video]")) {
  let video = null;
  clip.addEventListener("pointerenter", (event) => {
    if (event.pointerType !== "mouse" || video) return;
    const poster = clip.querySelector("img.poster");
    video = document.createElement("video");
    Object.assign(video, { src: clip.dataset.video, muted: true, loop: true, playsInline: true, autoplay: true });
    video.className = "poster";
    if (poster) { video.poster = poster.src; poster.hidden = true; }
    clip.prepend(video);
  });
  clip.addEventListener("pointerleave", () => {
    if (!video) return;
    video.remove();
    video = null;
    const poster = clip.querySelector("img.poster");
    if (poster) poster.hidden = false;
  });
}

// A "Copy" button next to a value shown once (a new API key): copies the element it names.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch {
    // No clipboard (an insecure origin, a refused permission): select it for Ctrl-C instead.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Selected: press Ctrl-C";
  }
});
