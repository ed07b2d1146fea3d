// The ledwarden console: log in, then show what /console/events pushes and act through the API.
// Every action is checked by the server; a refusal is shown as the server words it.
import {
  $, act, button, call, cell, getLang, say, setCsrf, setLang, t, whenSessionLost,
} from "/console/ui.js";
import { redrawFaults, renderFaults, setUpFaults } from "/console/faults.js";
import { forgetSelftests, renderSelftests, setUpSelftests } from "/console/selftest.js";
import { redrawPicture, refreshPicture, setUpPicture } from "/console/picture.js";
import { redrawUpgrades, refreshUpgrades, setUpUpgrades } from "/console/upgrade.js";

let stream = null;
let last = null;          // the last snapshot, redrawn when the language changes
let wallShown = null;     // the wall digest the picture shows
let who = null;           // the session's name and role, shown in the header
const LOGGED_IN = "lw-logged-in";     // a hint only: the server decides with the cookie

function applyLang() {
  document.documentElement.lang = getLang();
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  $("lang").textContent = t("other_lang");
  $("wall").alt = t("wall_alt");
  $("who").textContent = who ? t("who", who) : "";
  wallShown = null;
  forgetSelftests();
  if (last) render(last);
  redrawFaults();
  redrawPicture();
  redrawUpgrades();
}

function showLogin() {
  localStorage.removeItem(LOGGED_IN);
  if (stream) { stream.close(); stream = null; }
  setCsrf(null);
  forgetSelftests();
  last = null;
  wallShown = null;
  $("console").hidden = true;
  $("logout").hidden = true;
  who = null;
  $("who").textContent = "";
  $("login").hidden = false;
  $("token").focus();
}

function showConsole(session) {
  localStorage.setItem(LOGGED_IN, "1");
  setCsrf(session.csrf);
  who = { name: session.name, role: session.role };
  $("who").textContent = t("who", who);
  $("login").hidden = true;
  $("logout").hidden = false;
  $("console").hidden = false;
  listen();
  refreshPicture();
  refreshUpgrades();
}

function listen() {
  if (stream) stream.close();
  stream = new EventSource("/console/events");
  stream.addEventListener("snapshot", (event) => render(JSON.parse(event.data)));
  stream.addEventListener("ended", () => { showLogin(); say(t("session_over")); });
  stream.addEventListener("error", () => {
    // The browser retries by itself until the server refuses; then ask whether the session is
    // over (a reload or a lost network closes the stream too, and is no reason to log out).
    if (!stream || stream.readyState !== EventSource.CLOSED) return;
    fetch("/console/session", { credentials: "same-origin" }).then((resp) => {
      if (resp.status === 401) {
        showLogin();
        say(t("session_over"));
      } else if (resp.ok) {
        listen();
      }
    }).catch(() => {});
  });
}

function renderCards(cards) {
  const body = $("cards").querySelector("tbody");
  body.replaceChildren(...cards.map((card) => {
    const tr = document.createElement("tr");
    const s = card.status || {};
    tr.className = card.found ? "" : "missing";
    tr.append(cell(card.address), cell(t(card.found ? "answers_yes" : "answers_no")),
      cell(s.temperature_c == null ? null : `${s.temperature_c.toFixed(1)} °C`),
      cell(s.supply_mv == null ? null : `${(s.supply_mv / 1000).toFixed(2)} V`),
      cell(s.fan_rpm == null ? null : `${s.fan_rpm} rpm`),
      cell(String(card.dead_leds)), cell((s.flags || []).join(", ") || null),
      cell(card.link && t("link", { pct: card.link.answered_pct, retries: card.link.retries,
        p99: card.link.p99_ms ?? "–" })),
      cell(card.firmware == null ? null
        : Array.isArray(card.firmware) ? card.firmware.join(".") : String(card.firmware)));
    return tr;
  }));
}

function renderJobs(jobs) {
  const list = $("jobs");
  if (!jobs.length) {
    const li = document.createElement("li");
    li.textContent = t("no_jobs");
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(...jobs.map((job) => {
    const li = document.createElement("li");
    li.className = `job ${job.state}`;
    li.dataset.job = job.id;
    const head = document.createElement("div");
    const p = job.progress || {};
    const progress = p.total ? ` ${p.done}/${p.total}` : "";
    head.textContent = `#${job.id} ${job.kind} · ${t(`state_${job.state}`)}${progress}` +
      (p.step ? ` · ${p.step}` : "") + (job.error ? ` · ${job.error}` : "");
    li.append(head);
    if (job.question) {
      const q = document.createElement("p");
      q.className = "question";
      q.textContent = job.question;
      li.append(q,
        // The answer names the question it answers: if someone else answered it first, the
        // server refuses this one (409) instead of taking it for the next question.
        ...[true, false].map((yes) => button(t(yes ? "yes" : "no"), () => act(
          () => call("POST", `/api/v1/jobs/${job.id}/answer`, { yes, question_no: job.question_no }),
          () => t("answered", { id: job.id })), yes ? "answer-yes" : "answer-no")));
    }
    if (["queued", "running", "waiting"].includes(job.state)) {
      li.append(button(t("cancel"), () => act(() => call("POST", `/api/v1/jobs/${job.id}/cancel`),
        () => t("cancelled", { id: job.id })), "cancel"));
    }
    return li;
  }));
}

function render(snap) {
  last = snap;
  const missing = snap.cards.filter((c) => !c.found).length;
  const dead = snap.cards.reduce((n, c) => n + c.dead_leds, 0);
  $("wall-summary").textContent = t("summary", {
    cabinets: snap.cards.length, missing, dead, faults: snap.faults.active,
  });
  const wall = $("wall");
  wall.dataset.dead = String(dead);
  wall.dataset.missing = String(missing);
  // drawn for the width it is shown at (in steps, so a small resize does not redraw it)
  const width = Math.max(320, Math.min(1600, Math.round(wall.parentElement.clientWidth / 80) * 80));
  const shown = `${snap.wall}/${width}`;
  if (shown !== wallShown) {
    wallShown = shown;
    wall.src = `/console/wall.svg?lang=${getLang()}&width=${width}&v=${snap.wall}`;
  }
  renderCards(snap.cards);
  renderJobs(snap.jobs);
  renderFaults(snap);
  renderSelftests(snap);
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const field = $("token");
  act(async () => {
    const session = await call("POST", "/console/login", { token: field.value.trim() });
    field.value = "";
    say("");
    showConsole(session);
  });
});

$("logout").addEventListener("click", () => act(async () => {
  if (stream) { stream.close(); stream = null; }     // its "ended" is ours: no second message
  await call("POST", "/console/logout");
  showLogin();
}, () => t("logged_out")));

$("lang").addEventListener("click", () => {
  setLang(getLang() === "en" ? "zh" : "en");
  applyLang();
});

$("detect").addEventListener("click", () => act(() => call("POST", "/api/v1/detect", {}),
  (job) => t("started", { id: job.id, kind: job.kind })));

$("discover").addEventListener("click", () => act(() => call("POST", "/api/v1/discover", {}),
  (job) => t("started", { id: job.id, kind: job.kind })));

$("commission").addEventListener("click", () => act(
  () => call("POST", "/api/v1/commission", { unattended: false, lang: getLang() }),
  (job) => t("started", { id: job.id, kind: job.kind })));

window.addEventListener("resize", () => { if (last) render(last); });
whenSessionLost(showLogin);
setUpFaults();
setUpSelftests();
setUpPicture();
setUpUpgrades();
applyLang();
// Ask for the session only if this browser logged in (the cookie itself is out of the script's
// reach): a login page opened without one costs the controller no refused request in its log.
if (localStorage.getItem(LOGGED_IN)) {
  fetch("/console/session", { credentials: "same-origin" })
    .then(async (resp) => (resp.ok ? showConsole(await resp.json()) : showLogin()))
    .catch(() => showLogin());
} else {
  showLogin();
}
