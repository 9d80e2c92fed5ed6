// Runs a MicroPython script on the official MicroPython WebAssembly port (v1.27).
//
//   node run.mjs [--lib DIR]... [--mount HOSTDIR=/sd]... [--heap BYTES] SCRIPT.py [ARGS...]
//
// --lib DIR      copy DIR's .py/.mpy files (recursively) into /lib on the VM (on sys.path)
// --mount H=/P   copy host folder H into the VM's memory filesystem at /P before the run,
//                and mirror /P back into H when the script ends (or calls jshal.sync()).
// The script gets a JS module `jshal`: random(n) -> n random bytes (crypto.getRandomValues),
// time_ms() -> wall clock ms, sync() -> mirror mounts now, argv() -> ARGS, exit(code).
// Errors: only the Python traceback is printed (never the minified module), exit status 1.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";

const args = process.argv.slice(2);
const libs = [], mounts = [];
let heap = 1024 * 1024, script = null, scriptArgs = [];
while (args.length) {
  const a = args.shift();
  if (a === "--lib") libs.push(args.shift());
  else if (a === "--mount") { const [h, p] = args.shift().split("="); mounts.push({ host: h, vm: p }); }
  else if (a === "--heap") heap = parseInt(args.shift(), 10);
  else { script = a; scriptArgs = args.splice(0); }
}
if (!script) { console.error("usage: node run.mjs [--lib DIR]... [--mount HOST=/vm]... [--heap N] SCRIPT.py [ARGS...]"); process.exit(2); }

let out = "";
const mp = await loadMicroPython({
  heapsize: heap,
  stdout: (s) => process.stdout.write(s + "\n"),
  stderr: (s) => process.stderr.write(s + "\n"),
  linebuffer: true,
});
const FS = mp.FS;

function mkdirp(p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}
function copyIn(hostDir, vmDir, filter) {
  mkdirp(vmDir);
  for (const ent of fs.readdirSync(hostDir, { withFileTypes: true })) {
    const h = path.join(hostDir, ent.name), v = vmDir + "/" + ent.name;
    if (ent.isDirectory()) { if (ent.name !== "__pycache__" && ent.name !== "node_modules") copyIn(h, v, filter); }
    else if (!filter || filter(ent.name)) FS.writeFile(v, fs.readFileSync(h));
  }
}
function vmTree(vmDir, rel, acc) {
  for (const name of FS.readdir(vmDir)) {
    if (name === "." || name === "..") continue;
    const v = vmDir + "/" + name, r = rel ? rel + "/" + name : name;
    if (FS.isDir(FS.stat(v).mode)) { acc.dirs.push(r); vmTree(v, r, acc); } else acc.files.push(r);
  }
  return acc;
}
function hostTree(hostDir, rel, acc) {
  for (const ent of fs.readdirSync(hostDir, { withFileTypes: true })) {
    const r = rel ? rel + "/" + ent.name : ent.name;
    if (ent.isDirectory()) { acc.dirs.push(r); hostTree(path.join(hostDir, ent.name), r, acc); } else acc.files.push(r);
  }
  return acc;
}
function syncOut() {
  for (const m of mounts) {
    const t = vmTree(m.vm, "", { dirs: [], files: [] });
    fs.mkdirSync(m.host, { recursive: true });
    for (const d of t.dirs) fs.mkdirSync(path.join(m.host, d), { recursive: true });
    const keep = new Set(t.files);
    for (const f of t.files) {
      const data = FS.readFile(m.vm + "/" + f);
      const hp = path.join(m.host, f);
      let same = false;
      try { const old = fs.readFileSync(hp); same = old.length === data.length && Buffer.compare(old, Buffer.from(data)) === 0; } catch (e) {}
      if (!same) fs.writeFileSync(hp, data);
    }
    const h = hostTree(m.host, "", { dirs: [], files: [] });
    for (const f of h.files) if (!keep.has(f)) fs.unlinkSync(path.join(m.host, f));
    const vdirs = new Set(t.dirs);
    for (const d of h.dirs.reverse()) if (!vdirs.has(d)) fs.rmSync(path.join(m.host, d), { recursive: true, force: true });
  }
}

for (const l of libs) copyIn(l, "/lib", (n) => n.endsWith(".py") || n.endsWith(".mpy"));
for (const m of mounts) { if (fs.existsSync(m.host)) copyIn(m.host, m.vm, null); else mkdirp(m.vm); }

mp.registerJsModule("jshal", {
  random: (n) => { const b = new Uint8Array(n); crypto.getRandomValues(b); return b; },
  time_ms: () => Date.now(),
  sync: () => { syncOut(); return true; },
  argv: () => scriptArgs,
  exit: (code) => { process.exitCode = code; return code; },
});

const src = fs.readFileSync(script, "utf8");
try {
  mp.runPython("import sys\nif '/lib' not in sys.path: sys.path.insert(0, '/lib')");
  await mp.runPythonAsync(src);
} catch (e) {
  const msg = (e && e.message) ? e.message : String(e);
  process.stderr.write(msg.endsWith("\n") ? msg : msg + "\n");
  process.exitCode = 1;
}
try { syncOut(); } catch (e) { process.stderr.write("mpvm: could not mirror mounts: " + e.message + "\n"); process.exitCode = 1; }
