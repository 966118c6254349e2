"use strict";
const KEY = "nicegan-study-participant";
function participantId() {
  const fromUrl = new URLSearchParams(location.search).get("pid");
  let pid = fromUrl;
  try { pid = pid || localStorage.getItem(KEY); } catch (e) { /* storage disabled: a fresh id per visit */ }
  if (!pid) {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    pid = "p" + Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");
  }
  try { localStorage.setItem(KEY, pid); } catch (e) { /* ignore */ }
  return pid;
}
const pid = participantId();
document.getElementById("pid").textContent = pid;
let current = null, shownAt = 0, busy = false;

function say(text) { document.getElementById("message").textContent = text || ""; }

async function call(url, options) {
  let response;
  try { response = await fetch(url, options); }
  catch (e) {
    return {ok: false, data: {error: "the study server cannot be reached; check the connection and reload"}};
  }
  let data;
  try { data = await response.json(); }
  catch (e) { data = {error: "the server sent an unreadable answer (HTTP " + response.status + ")"}; }
  return {ok: response.ok, status: response.status, data: data};
}

function loaded(img) {
  return new Promise((resolve, reject) => {
    if (img.complete && img.naturalWidth) { resolve(); return; }
    img.onload = () => resolve();
    img.onerror = () => reject(new Error("image"));
  });
}

async function show(data) {
  document.body.dataset.ready = "";
  if (data.done) {
    current = null;
    document.getElementById("study").style.display = "none";
    document.getElementById("done").style.display = "block";
    document.body.dataset.ready = "done";
    return;
  }
  current = data;
  document.getElementById("progress").textContent = "Trial " + data.trial + " of " + data.total;
  document.getElementById("bar").style.width = (100 * (data.trial - 1) / data.total) + "%";
  const source = document.getElementById("source");
  source.src = data.source;
  const box = document.getElementById("options");
  box.replaceChildren();
  const images = [source];
  data.options.forEach((opt, i) => {
    const button = document.createElement("button");
    button.className = "option";
    button.type = "button";
    button.disabled = true;
    button.dataset.choice = opt.id;
    const fig = document.createElement("figure");
    const frame = document.createElement("div");
    frame.className = "frame";
    const img = document.createElement("img");
    img.src = opt.src;
    img.alt = "option " + (i + 1);
    frame.appendChild(img);
    const cap = document.createElement("figcaption");
    cap.textContent = String(i + 1);
    fig.append(frame, cap);
    button.appendChild(fig);
    button.addEventListener("click", () => choose(opt.id));
    box.appendChild(button);
    images.push(img);
  });
  try { await Promise.all(images.map(loaded)); }
  catch (e) { say("An image could not be loaded; please reload the page."); return; }
  if (current !== data) return;
  box.querySelectorAll("button").forEach(b => { b.disabled = false; });
  shownAt = performance.now();
  document.body.dataset.ready = String(data.trial);
}

async function load() {
  const r = await call("api/trial?pid=" + encodeURIComponent(pid));
  if (!r.ok) { say(r.data.error); return; }
  await show(r.data);
}

async function choose(id) {
  if (busy || !current) return;
  busy = true;
  const trial = current.trial;
  document.querySelectorAll("button.option").forEach(b => { b.disabled = true; });
  const ms = Math.max(0, Math.round(performance.now() - shownAt));
  const r = await call("api/vote", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({participant: pid, trial: trial, choice: id, response_ms: ms})});
  busy = false;
  if (r.ok) { say(""); await show(r.data); return; }
  say(r.data.error);
  if (r.status === 409) { await load(); }  // answered elsewhere (another tab): carry on from the server's state
  else { document.querySelectorAll("button.option").forEach(b => { b.disabled = false; }); }
}

document.addEventListener("keydown", ev => {
  if (!current || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const n = parseInt(ev.key, 10);
  const buttons = document.querySelectorAll("button.option");
  if (n >= 1 && n <= buttons.length && !buttons[n - 1].disabled) choose(buttons[n - 1].dataset.choice);
});
load();
