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
