// What every part of the console shares: the language, the CSRF token, API calls, messages.
import { STRINGS, translate } from "/console/i18n.js";

const $ = (id) => document.getElementById(id);
export { $ };

let lang = localStorage.getItem("lw-lang") || document.documentElement.lang || "en";
if (!(lang in STRINGS)) lang = "en";
let csrf = null;
let onSessionLost = () => {};

export const getLang = () => lang;
export function setLang(value) {
  lang = value;
  localStorage.setItem("lw-lang", lang);
}
export const setCsrf = (value) => { csrf = value; };
export const whenSessionLost = (handler) => { onSessionLost = handler; };
export const t = (key, fields) => translate(lang, key, fields);

export class Refused extends Error {
  constructor(status, error) {
    super(error);
    this.status = status;
  }
}

export function say(text, kind = "error") {
  const box = $("message");
  box.textContent = text || "";
  box.className = kind;
  box.hidden = !text;
}

// One API call with the session cookie; a state change carries the CSRF token.  The body is
// sent as JSON, or as it is when it is binary (an upload's chunk).
export async function call(method, path, body) {
  const headers = {};
  if (method !== "GET") headers["X-CSRF-Token"] = csrf ?? "";
  const binary = body instanceof ArrayBuffer || ArrayBuffer.isView(body);
  if (body !== undefined) headers["Content-Type"] = binary ? "application/octet-stream" : "application/json";
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : binary ? body : JSON.stringify(body),
  });
  let data = null;
  try { data = await resp.json(); } catch { data = null; }
  if (!resp.ok) throw new Refused(resp.status, (data && data.error) || resp.statusText);
  return data;
}

// Run an action; show the server's refusal on the page instead of failing quietly.
export async function act(what, onDone) {
  try {
    const result = await what();
    if (onDone) say(onDone(result), "ok");
  } catch (err) {
    if (err instanceof Refused) {
      say(t("refused", { status: err.status, error: err.message }));
      if (err.status === 401) onSessionLost();
    } else {
      say(err instanceof Error ? err.message : String(err));
    }
  }
}

export function cell(text) {
  const td = document.createElement("td");
  td.textContent = text ?? "–";
  return td;
}

export function button(label, onClick, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

export function link(label, href) {
  const a = document.createElement("a");
  a.textContent = label;
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

export function empty(text) {
  const li = document.createElement("li");
  li.className = "empty";
  li.textContent = text;
  return li;
}

// A list of name/value facts (a <dl>), drawn afresh: the picture's and the upgrades' state.
export function showFacts(id, rows) {
  $(id).replaceChildren(...rows.flatMap(([name, value]) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = value;
    return [dt, dd];
  }));
}
