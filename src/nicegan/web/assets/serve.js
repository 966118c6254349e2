"use strict";
const cfg = JSON.parse(document.getElementById("config").textContent);
const $ = id => document.getElementById(id);
let file = null, preview = null, download = null, seq = 0;

function setState(state) { document.body.dataset.state = state; }
function say(text) { $("message").textContent = text || ""; }
function clearOutputs() {
  for (const id of ["output", "heatmap"]) $(id).removeAttribute("src");
  $("download").removeAttribute("href");
  if (download) URL.revokeObjectURL(download);
  download = null;
}
// the download link holds a Blob, not the data URL: browsers refuse to download very long data URLs
function blobUrl(dataUrl) {
  const text = atob(dataUrl.slice(dataUrl.indexOf(",") + 1));
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return URL.createObjectURL(new Blob([bytes], {type: "image/png"}));
}
function fail(text) { clearOutputs(); $("status").textContent = ""; say(text); setState("error"); }

function pick(chosen) {
  if (!chosen) return;
  file = chosen;
  if (preview) URL.revokeObjectURL(preview);
  preview = URL.createObjectURL(file);
  $("input").src = preview;
  $("again").disabled = false;
  translate();
}

async function translate() {
  if (!file) return;
  const mine = ++seq;
  say("");
  clearOutputs();
  if (file.size > cfg.maxUploadBytes) {  // the server would refuse it too; do not send it at all
    fail((file.name || "the file") + " is over this server's upload limit of " + cfg.uploadLimit +
         " (--max-upload-mb)");
    return;
  }
  setState("busy");
  $("status").textContent = "Translating " + (file.name || "the image") + "...";
  const body = new FormData();
  body.append("file", file, file.name || "image");
  body.append("direction", $("direction").value);
  body.append("full_resolution", $("full").checked ? "1" : "0");
  if (cfg.style && $("seed").value !== "") body.append("style_seed", $("seed").value);
  let response, data;
  try { response = await fetch("api/translate", {method: "POST", body: body}); }
  catch (e) { if (mine === seq) fail("the server cannot be reached; is nicegan serve still running?"); return; }
  try { data = await response.json(); }
  catch (e) { data = {error: "the server sent an unreadable answer (HTTP " + response.status + ")"}; }
  if (mine !== seq) return;  // a newer request took over
  if (!response.ok) { fail(data.error || ("HTTP " + response.status)); return; }
  $("output").src = data.translation;
  download = blobUrl(data.translation);
  $("download").href = download;
  const stem = (file.name || "image").replace(/\.[^.]*$/, "");
  $("download").download = stem + "_" + data.direction + ".png";
  if (data.heatmap) $("heatmap").src = data.heatmap;
  let text = data.input_size.join("×") + " → " + data.output_size.join("×") + " (" +
    data.direction + (data.full_resolution ? ", full resolution" : "") + ") in " + data.seconds.toFixed(2) + " s";
  if (data.style_seed !== null) {
    text += ", style seed " + data.style_seed;
  }
  $("status").textContent = text;
  setState("done");
}

$("file").addEventListener("change", () => pick($("file").files[0]));
$("input").addEventListener("error", () => $("input").removeAttribute("src"));
const drop = $("drop");
for (const ev of ["dragenter", "dragover"]) {
  drop.addEventListener(ev, e => { e.preventDefault(); drop.classList.add("over"); });
}
for (const ev of ["dragleave", "drop"]) {
  drop.addEventListener(ev, e => { e.preventDefault(); drop.classList.remove("over"); });
}
drop.addEventListener("drop", e => pick(e.dataTransfer.files[0]));
for (const id of ["direction", "full", "seed"]) {
  if ($(id)) $(id).addEventListener("change", () => translate());
}
$("again").addEventListener("click", () => translate());
