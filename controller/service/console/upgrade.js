// Upgrades: the controller's slots and the last card firmware upgrade; upload a bundle or a
// firmware package and start it (service role).  The upload is resumable and named by its
// SHA-256, as the command line does it (host/upload.py).
import { $, act, call, say, showFacts, t } from "/console/ui.js";

const CHUNK = 960 * 1024;       // under the API's 1 MiB request limit
let shown = null;               // the last answers, drawn again in the other language

function show(controller, cards) {
  const slots = Object.entries(controller.slots).map(([name, slot]) =>
    `${name}: ${slot.role}${slot.version ? ` ${slot.version}` : ""}${slot.confirmed ? " ✓" : ""}`);
  const rows = [
    [t("running"), `${controller.running.version} (${controller.current})`],
    [t("slots"), slots.join(" · ")],
    [t("confirmation"), controller.confirmation.state],
    [t("card_upgrade"), cards.job ? `#${cards.job.id} ${cards.job.state}` : t("none")],
  ];
  showFacts("upgrade-state", rows);
}

export async function refreshUpgrades() {
  await act(async () => {
    const [controller, cards] = await Promise.all([
      call("GET", "/api/v1/upgrade/controller"), call("GET", "/api/v1/upgrade/cards")]);
    shown = [controller, cards];
    show(...shown);
  });
}

// The language changed: the same answers, in the new words (no request).
export function redrawUpgrades() {
  if (shown) show(...shown);
}

async function upload(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const id = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const base = `/api/v1/uploads/${id}`;
  let status = await call("GET", base);
  while (!status.complete && status.size < bytes.length) {
    say(t("uploading", { percent: Math.floor((100 * status.size) / bytes.length) }), "ok");
    status = await call("PUT", `${base}?offset=${status.size}`,
      bytes.subarray(status.size, status.size + CHUNK));
  }
  if (!status.complete) await call("POST", `${base}/complete`, { sha256: id });
  return id;
}

export function setUpUpgrades() {
  $("start-upgrade").addEventListener("click", () => {
    const file = $("package").files[0];
    if (!file) {
      say(t("choose_file"));
      return;
    }
    const target = $("upgrade-target").value;
    act(async () => {
      const id = await upload(file);
      return call("POST", `/api/v1/upgrade/${target}`, { upload: id });
    }, (job) => t("started", { id: job.id, kind: job.kind })).then(refreshUpgrades);
  });
}
