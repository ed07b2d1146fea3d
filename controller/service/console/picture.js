// The picture: source, brightness, correction, calibration; brightness, gamma and test patterns
// set by an installer.  Read when the console opens and after each change made here.
import { $, act, call, showFacts, t } from "/console/ui.js";

let shown = null;         // the last answers, drawn again in the other language

function show(brightness, correction, calibration, source) {
  const active = calibration.cabinets.filter((c) => c.active != null);
  const calibrated = active.length;
  const rows = [
    [t("source"), source.spec],
    [t("brightness"), `${brightness.percent} % (${brightness.source})`],
    [t("schedule"), brightness.next
      ? t("next_entry", { percent: brightness.next.percent, time: brightness.next.time })
      : t("none")],
    [t("correction"), `${correction.curve} · gamma ${correction.gamma} · white ${correction.white.join(" / ")}`],
    [t("calibration"), t("calibrated", { n: calibrated, total: calibration.cabinets.length }) +
      active.map((c) => ` · ${c.cabinet}: v${c.active}`).join("")],
  ];
  const select = $("cal-cabinet");
  const chosen = select.value;
  select.replaceChildren(...calibration.cabinets.map((c) => {
    const option = document.createElement("option");
    option.value = c.cabinet;
    option.textContent = `${c.cabinet} (${c.width} × ${c.height})`;
    return option;
  }));
  if (chosen) select.value = chosen;
  showFacts("picture-state", rows);
}

export async function refreshPicture() {
  await act(async () => {
    const [b, c, cal, src] = await Promise.all(["/api/v1/brightness", "/api/v1/correction",
      "/api/v1/calibration", "/api/v1/source"].map((path) => call("GET", path)));
    shown = [b, c, cal, src];
    show(...shown);
  });
}

// The language changed: the same answers, in the new words (no request).
export function redrawPicture() {
  if (shown) show(...shown);
}

function change(what, done) {
  act(what, done).then(refreshPicture);
}

// A calibration file (CSV or .npz, by its name) for one cabinet, imported and put in use.
async function importCalibration() {
  const file = $("cal-file").files[0];
  if (!file) throw new Error(t("choose_file"));
  const format = file.name.toLowerCase().endsWith(".npz") ? "npz" : "csv";
  const cabinet = $("cal-cabinet").value;
  const query = new URLSearchParams({ cabinet, format, activate: "true", name: file.name });
  return call("POST", `/api/v1/calibration/import?${query}`, await file.arrayBuffer());
}

export function setUpPicture() {
  $("cal-import").addEventListener("click", () => change(importCalibration,
    (answer) => t("calibration_imported", { cabinet: $("cal-cabinet").value, version: answer.active })));
  $("cal-rollback").addEventListener("click", () => change(
    () => call("POST", "/api/v1/calibration/rollback", { cabinet: Number($("cal-cabinet").value) }),
    () => t("calibration_rolled_back", { cabinet: $("cal-cabinet").value })));
  $("set-brightness").addEventListener("click", () => change(
    () => call("POST", "/api/v1/brightness", { percent: Number($("brightness-percent").value) }),
    () => t("brightness_set", { percent: $("brightness-percent").value })));
  $("set-gamma").addEventListener("click", () => change(
    () => call("POST", "/api/v1/correction", { gamma: Number($("gamma").value) }),
    () => t("gamma_set", { gamma: $("gamma").value })));
  $("set-source").addEventListener("click", () => change(
    () => call("POST", "/api/v1/source", { spec: $("source-spec").value.trim() }),
    () => t("source_set", { spec: $("source-spec").value.trim() })));
  $("show-pattern").addEventListener("click", () => change(
    () => call("POST", "/api/v1/pattern", { pattern: $("pattern").value }),
    () => t("pattern_shown", { pattern: $("pattern").value })));
}
