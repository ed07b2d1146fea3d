// Faults: the active ones live from the snapshot, the history on demand; clearing by role.
import { $, act, button, call, cell, t } from "/console/ui.js";

let history = false;
let active = [];

function row(fault) {
  const tr = document.createElement("tr");
  tr.className = `fault ${fault.severity} ${fault.state}`;
  tr.dataset.fault = fault.id;
  const action = document.createElement("td");
  if (fault.state === "active") {
    action.append(button(t("clear"), () => act(
      () => call("POST", `/api/v1/faults/${fault.id}/clear`),
      () => t("fault_cleared", { id: fault.id })).then(refresh), "clear"));
  } else {
    action.textContent = fault.cleared_by ? t("cleared_by", { who: fault.cleared_by }) : fault.state;
  }
  tr.append(cell(fault.severity), cell(fault.code), cell(fault.source),
    cell(fault.last_seen.replace("T", " ").slice(0, 19)), cell(String(fault.count)), action);
  return tr;
}

function show(faults) {
  const body = $("faults").querySelector("tbody");
  if (!faults.length) {
    const tr = document.createElement("tr");
    const td = cell(t(history ? "no_history" : "no_faults"));
    td.colSpan = 6;
    tr.append(td);
    body.replaceChildren(tr);
  } else {
    body.replaceChildren(...faults.map(row));
  }
  $("fault-mode").textContent = t(history ? "show_active" : "show_history");
}

async function refresh() {
  if (!history) return show(active);
  await act(async () => show((await call("GET", "/api/v1/faults?state=all&limit=50")).faults));
}

export function renderFaults(snapshot) {
  const changed = JSON.stringify(snapshot.active_faults) !== JSON.stringify(active);
  active = snapshot.active_faults;
  if (!history) show(active);
  else if (changed) refresh();
}

export function setUpFaults() {
  $("fault-mode").addEventListener("click", () => {
    history = !history;
    refresh();
  });
}

export const redrawFaults = refresh;
