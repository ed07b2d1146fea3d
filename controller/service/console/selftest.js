// Self-tests and reports: run a profile (it shows in the jobs), open the stored reports.
import { $, act, call, empty, getLang, link, t } from "/console/ui.js";

let finished = null;      // the finished self-test and commissioning jobs the lists were read after

async function refreshLists() {
  await act(async () => {
    const lang = getLang();
    const [runs, reports] = await Promise.all([
      call("GET", "/api/v1/selftest/runs?limit=10"), call("GET", "/api/v1/reports")]);
    $("runs").replaceChildren(...(runs.runs.length ? runs.runs.map((run) => {
      const li = document.createElement("li");
      li.className = `run ${run.result}`;
      li.append(`#${run.id} ${run.profile} · ${run.result} · ${run.started.replace("T", " ").slice(0, 16)} `,
        link(t("open_report"), `/api/v1/selftest/runs/${run.id}?format=html&lang=${lang}`));
      return li;
    }) : [empty(t("no_runs"))]));
    showCompare(runs.runs);
    $("reports").replaceChildren(...(reports.reports.length ? reports.reports.slice(0, 10).map((r) => {
      const li = document.createElement("li");
      li.append(`${r.name} `, link(t("open_report"), `/api/v1/reports/${encodeURIComponent(r.html)}`));
      return li;
    }) : [empty(t("no_reports"))]));
  });
}

// Any two runs side by side: the first one's report, compared with the second instead of the
// run before it (the API's ?against=).
function compareLink() {
  const a = $("compare-a").value;
  const b = $("compare-b").value;
  $("compare-open").href = `/api/v1/selftest/runs/${a}?format=html&lang=${getLang()}&against=${b}`;
}

function showCompare(runs) {
  $("compare").hidden = runs.length < 2;
  for (const [id, pick] of [["compare-a", 0], ["compare-b", 1]]) {
    // the newest and the one before it, afresh whenever a run is added
    const select = $(id);
    select.replaceChildren(...runs.map((run) => {
      const option = document.createElement("option");
      option.value = run.id;
      option.textContent = `#${run.id} ${run.profile} ${run.started.slice(0, 10)}`;
      return option;
    }));
    if (runs[pick]) select.value = String(runs[pick].id);
  }
  compareLink();
}

export function renderSelftests(snapshot) {
  const done = snapshot.jobs
    .filter((j) => ["selftest", "commission"].includes(j.kind) && j.finished)
    .map((j) => j.id).join(",");
  if (done !== finished) {
    finished = done;
    refreshLists();
  }
}

export function setUpSelftests() {
  $("compare-a").addEventListener("change", compareLink);
  $("compare-b").addEventListener("change", compareLink);
  $("run-selftest").addEventListener("click", () => act(
    () => call("POST", "/api/v1/selftest/run", { profile: $("profile").value }),
    (job) => t("started", { id: job.id, kind: job.kind })));
}

export function forgetSelftests() {
  finished = null;
}
