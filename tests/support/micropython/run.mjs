// Runs a module under real MicroPython (the WebAssembly port), from a board-like flat folder.
//
//   node run.mjs --board DIR --main MODULE [--heap BYTES]
//
// Every file of DIR is copied into the interpreter's own filesystem at /board
// (a card keeps its modules flat in one folder), /board becomes the working
// directory, and `import MODULE; MODULE.main()` runs.  Files the module writes under
// /board/out/ are copied back to DIR/out/ afterwards, whether it succeeded or
// not.  Exit status: 0 when main() returned, 1 when MicroPython raised
// (its traceback goes to stderr), 2 when the harness itself failed.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const board = option("--board");
const main = option("--main");
const heap = Number(option("--heap", String(1024 * 1024)));
if (!board || !main || !Number.isInteger(heap) || heap < 16384) {
  console.error("usage: node run.mjs --board DIR --main MODULE [--heap BYTES]");
  process.exit(2);
}

const mp = await loadMicroPython({
  heapsize: heap,
  linebuffer: false,
  stdout: (bytes) => process.stdout.write(bytes),
  stderr: (bytes) => process.stderr.write(bytes),
});
const FS = mp.FS;
FS.mkdir("/board");
for (const name of fs.readdirSync(board)) {
  const full = path.join(board, name);
  if (fs.statSync(full).isFile()) FS.writeFile(`/board/${name}`, fs.readFileSync(full));
}
FS.mkdir("/board/out");

function copyBack() {
  const out = path.join(board, "out");
  fs.mkdirSync(out, { recursive: true });
  for (const name of FS.readdir("/board/out")) {
    if (name === "." || name === "..") continue;
    fs.writeFileSync(path.join(out, name), FS.readFile(`/board/out/${name}`));
  }
}

let status = 0;
try {
  mp.runPython(`import os\nos.chdir('/board')\nimport ${main}\n${main}.main()\n`);
} catch (error) {
  if (error.name !== "PythonError") {
    console.error(`harness: ${error.stack || error}`);
    status = 2;
  } else {
    process.stderr.write(`MicroPython raised ${error.type}:\n${error.message}\n`);
    status = 1;
  }
}
copyBack();
process.exit(status);
