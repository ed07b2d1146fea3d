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
    $("reports").replaceChildren(...(reports.reports.length ? reports.reports.slice(0, 10).map((r) => {
      const li = document.createElement("li");
      li.append(`${r.name} `, link(t("open_report"), `/api/v1/reports/${encodeURIComponent(r.html)}`));
      return li;
    }) : [empty(t("no_reports"))]));
  });
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
  $("run-selftest").addEventListener("click", () => act(
    () => call("POST", "/api/v1/selftest/run", { profile: $("profile").value }),
    (job) => t("started", { id: job.id, kind: job.kind })));
}

export function forgetSelftests() {
  finished = null;
}
