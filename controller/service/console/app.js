// The ledwarden console: log in, then show what /console/events pushes and act through the API.
// Every action is checked by the server; a refusal is shown as the server words it.
import { STRINGS, translate } from "/console/i18n.js";

const $ = (id) => document.getElementById(id);
let lang = localStorage.getItem("lw-lang") || document.documentElement.lang || "en";
if (!(lang in STRINGS)) lang = "en";
let csrf = null;
let stream = null;
let last = null;          // the last snapshot, redrawn when the language changes
let wallShown = null;     // the wall digest the picture shows

const t = (key, fields) => translate(lang, key, fields);

class Refused extends Error {
  constructor(status, error) {
    super(error);
    this.status = status;
  }
}

function say(text, kind = "error") {
  const box = $("message");
  box.textContent = text || "";
  box.className = kind;
  box.hidden = !text;
}

async function call(method, path, body) {
  const headers = {};
  if (method !== "GET") headers["X-CSRF-Token"] = csrf ?? "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await resp.json(); } catch { data = null; }
  if (!resp.ok) throw new Refused(resp.status, (data && data.error) || resp.statusText);
  return data;
}

// Run an action; show the server's refusal on the page instead of failing quietly.
async function act(what, onDone) {
  try {
    const result = await what();
    if (onDone) say(onDone(result), "ok");
  } catch (err) {
    if (err instanceof Refused) {
      say(t("refused", { status: err.status, error: err.message }));
      if (err.status === 401) showLogin();
    } else {
      say(String(err));
    }
  }
}

function applyLang() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  $("lang").textContent = t("other_lang");
  $("wall").alt = t("wall_alt");
  wallShown = null;
  if (last) render(last);
}

function showLogin() {
  if (stream) { stream.close(); stream = null; }
  csrf = null;
  last = null;
  wallShown = null;
  $("console").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("token").focus();
}

function showConsole(session) {
  csrf = session.csrf;
  $("who").textContent = t("who", { name: session.name, role: session.role });
  $("login").hidden = true;
  $("logout").hidden = false;
  $("console").hidden = false;
  listen();
}

function listen() {
  if (stream) stream.close();
  stream = new EventSource("/console/events");
  stream.addEventListener("snapshot", (event) => render(JSON.parse(event.data)));
  stream.addEventListener("ended", () => { showLogin(); say(t("session_over")); });
  stream.addEventListener("error", () => {
    // The browser retries by itself; if the session is gone, the retry cannot succeed.
    if (stream && stream.readyState === EventSource.CLOSED) {
      showLogin();
      say(t("session_over"));
    }
  });
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text ?? "–";
  return td;
}

function button(label, onClick, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
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
      cell(card.firmware == null ? null : String(card.firmware)));
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
        button(t("yes"), () => act(() => call("POST", `/api/v1/jobs/${job.id}/answer`, { yes: true }),
          () => t("answered", { id: job.id })), "answer-yes"),
        button(t("no"), () => act(() => call("POST", `/api/v1/jobs/${job.id}/answer`, { yes: false }),
          () => t("answered", { id: job.id })), "answer-no"));
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
  if (snap.wall !== wallShown) {
    wallShown = snap.wall;
    wall.src = `/console/wall.svg?lang=${lang}&v=${snap.wall}`;
  }
  renderCards(snap.cards);
  renderJobs(snap.jobs);
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
  await call("POST", "/console/logout");
  showLogin();
}, () => t("logged_out")));

$("lang").addEventListener("click", () => {
  lang = lang === "en" ? "zh" : "en";
  localStorage.setItem("lw-lang", lang);
  applyLang();
});

$("detect").addEventListener("click", () => act(() => call("POST", "/api/v1/detect", {}),
  (job) => t("started", { id: job.id, kind: job.kind })));

$("commission").addEventListener("click", () => act(
  () => call("POST", "/api/v1/commission", { unattended: false, lang }),
  (job) => t("started", { id: job.id, kind: job.kind })));

applyLang();
fetch("/console/session", { credentials: "same-origin" })
  .then(async (resp) => (resp.ok ? showConsole(await resp.json()) : showLogin()))
  .catch(() => showLogin());
