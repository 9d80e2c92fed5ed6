// Runs a MicroPython script on the official MicroPython WebAssembly port (v1.27).
//
//   node run.mjs [--serial] [--lib DIR]... [--mount HOSTDIR=/sd]... [--heap BYTES] SCRIPT.py [ARGS...]
//
// --lib DIR[=DEST]  copy DIR's .py/.mpy files (recursively) into /lib/DEST on the VM (/lib
//                itself without DEST): a package folder goes in as /lib/<package>/, as on a
//                board's file system (/lib is on MicroPython's default sys.path)
// --mount H=/P   copy host folder H into the VM's memory filesystem at /P before the run,
//                and mirror /P back into H when the script ends (or calls jshal.sync()).
// The script gets a JS module `jshal`: random(n) -> n random bytes (crypto.getRandomValues),
// time_ms() -> wall clock ms, sync() -> mirror mounts now, argv() -> ARGS, exit(code).
// Errors: only the Python traceback is printed (never the minified module), exit status 1.
//
// --serial       the Node process's stdin/stdout become the recorder's serial port (raw
//                bytes, for sim/serve.py to bridge to a pty); Python's print() goes to
//                stderr. The VM sees the port as the device file /dev/serial (read(n)
//                returns what arrived, b"" when nothing; write() takes everything), whole
//                buffers crossing the VM boundary, and jshal gains serial_read(n) ->
//                Uint8Array, serial_write(bytes) (slow: byte by byte through the proxy),
//                serial_pending() -> bytes not yet taken by stdout, serial_busy() -> true
//                while over 1 MiB is pending, serial_stopping() -> true once stdin ended
//                (and all it brought was read) or SIGTERM/SIGINT came (the script is
//                expected to wind down then), and
//                next_io() -> a Promise resolved after Node polled I/O once (await it in a
//                busy loop: ~0.05 ms, where asyncio.sleep_ms(0) costs a ~1.2 ms timer).
//                Mounts are mirrored when the script ends and on every jshal.sync() (only
//                files that changed are written). If the script does not end within 20 s
//                of a signal, the runner mirrors and exits anyway (status 1).
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";

const args = process.argv.slice(2);
const libs = [], mounts = [];
let heap = 1024 * 1024, script = null, scriptArgs = [], serial = false;
while (args.length) {
  const a = args.shift();
  if (a === "--lib") libs.push(args.shift());
  else if (a === "--serial") serial = true;
  else if (a === "--mount") { const [h, p] = args.shift().split("="); mounts.push({ host: h, vm: p }); }
  else if (a === "--heap") heap = parseInt(args.shift(), 10);
  else { script = a; scriptArgs = args.splice(0); }
}
if (!script) { console.error("usage: node run.mjs [--serial] [--lib DIR]... [--mount HOST=/vm]... [--heap N] SCRIPT.py [ARGS...]"); process.exit(2); }

let out = "";
const mp = await loadMicroPython({
  heapsize: heap,
  stdout: serial ? (s) => process.stderr.write(s + "\n") : (s) => process.stdout.write(s + "\n"),
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
// what was last mirrored of each VM file (inode, size, mtime): an unchanged file is not
// read again, so mirroring often (--serial) costs what changed, not the whole store
const mirrored = new Map();
function syncOut() {
  for (const m of mounts) {
    const t = vmTree(m.vm, "", { dirs: [], files: [] });
    fs.mkdirSync(m.host, { recursive: true });
    for (const d of t.dirs) fs.mkdirSync(path.join(m.host, d), { recursive: true });
    const keep = new Set(t.files);
    for (const f of t.files) {
      const st = FS.stat(m.vm + "/" + f);
      const stamp = st.ino + ":" + st.size + ":" + st.mtime.getTime();
      const hp = path.join(m.host, f);
      if (mirrored.get(hp) === stamp && fs.existsSync(hp)) continue;
      const data = FS.readFile(m.vm + "/" + f);
      let same = false;
      try { const old = fs.readFileSync(hp); same = old.length === data.length && Buffer.compare(old, Buffer.from(data)) === 0; } catch (e) {}
      if (!same) fs.writeFileSync(hp, data);
      mirrored.set(hp, stamp);
    }
    const h = hostTree(m.host, "", { dirs: [], files: [] });
    for (const f of h.files) if (!keep.has(f)) fs.unlinkSync(path.join(m.host, f));
    const vdirs = new Set(t.dirs);
    for (const d of h.dirs.reverse()) if (!vdirs.has(d)) fs.rmSync(path.join(m.host, d), { recursive: true, force: true });
  }
}

for (const l of libs) {
  const eq = l.indexOf("=");
  const host = eq < 0 ? l : l.slice(0, eq), dest = eq < 0 ? "" : l.slice(eq + 1);
  copyIn(host, dest ? "/lib/" + dest : "/lib", (n) => n.endsWith(".py") || n.endsWith(".mpy"));
}
for (const m of mounts) { if (fs.existsSync(m.host)) copyIn(m.host, m.vm, null); else mkdirp(m.vm); }

const jshal = {
  random: (n) => { const b = new Uint8Array(n); crypto.getRandomValues(b); return b; },
  time_ms: () => Date.now(),
  sync: () => { syncOut(); return true; },
  argv: () => scriptArgs,
  exit: (code) => { process.exitCode = code; return code; },
};

// ---- --serial: stdin/stdout as the recorder's serial port
let stopping = false, watchdog = null;
if (serial) {
  const rxq = [];             // Buffers received on stdin, not yet read by the VM
  let rxBytes = 0, paused = false;
  const RX_HIGH = 8 << 20, RX_LOW = 1 << 20, TX_BUSY = 1 << 20;
  process.stdin.on("data", (b) => {
    rxq.push(b);
    rxBytes += b.length;
    if (rxBytes > RX_HIGH && !paused) { paused = true; process.stdin.pause(); }
  });
  let ended = false;           // stdin ended: stop once what it brought has been read
  const stop = () => {
    if (stopping) return;
    stopping = true;
    watchdog = setTimeout(() => {
      process.stderr.write("mpvm: the script did not stop within 20 s; mirroring and exiting\n");
      try { syncOut(); } catch (e) { process.stderr.write("mpvm: could not mirror mounts: " + e.message + "\n"); }
      process.exit(1);
    }, 20000);
    watchdog.unref();
  };
  process.stdin.on("end", () => { ended = true; if (!rxBytes) stop(); });
  process.stdin.on("error", stop);
  process.stdout.on("error", stop);   // EPIPE: the bridge is gone
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("SIGHUP", stop);
  const take = (dst, off, length) => {   // copy up to length queued bytes into dst at off
    let n = 0;
    while (rxq.length && n < length) {
      const c = rxq[0], k = Math.min(c.length, length - n);
      dst.set(k === c.length ? c : c.subarray(0, k), off + n);
      n += k;
      if (k === c.length) rxq.shift(); else rxq[0] = c.subarray(k);
    }
    rxBytes -= n;
    if (paused && rxBytes < RX_LOW) { paused = false; process.stdin.resume(); }
    if (ended && !rxBytes) stop();
    return n;
  };
  const send = (buf) => { if (buf.length) process.stdout.write(buf); };
  // /dev/serial: the fast path (the VM's read()/write() hand over whole buffers)
  const dev = FS.makedev(64, 0);
  FS.registerDevice(dev, {
    open(stream) { stream.seekable = false; },
    close(stream) {},
    read(stream, buffer, offset, length, pos) {
      return take(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length), offset, length);
    },
    write(stream, buffer, offset, length, pos) {
      send(Buffer.from(new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length)));
      return length;
    },
  });
  FS.mkdev("/dev/serial", 0o666, dev);
  jshal.serial_read = (n) => { const b = new Uint8Array(Math.min(n, rxBytes)); const k = take(b, 0, b.length); return b.subarray(0, k); };
  jshal.serial_write = (data) => { const b = Buffer.from(Uint8Array.from(data)); send(b); return b.length; };
  jshal.serial_pending = () => process.stdout.writableLength;
  jshal.serial_busy = () => process.stdout.writableLength > TX_BUSY;
  jshal.serial_stopping = () => stopping;
  // a Promise that resolves once Node has polled I/O (setImmediate): `await jshal.next_io()`
  // lets stdin data in for ~0.05 ms, where `await asyncio.sleep_ms(0)` costs ~1.2 ms (a timer)
  jshal.next_io = () => new Promise((resolve) => setImmediate(resolve));
}
mp.registerJsModule("jshal", jshal);

const src = fs.readFileSync(script, "utf8");
try {
  await mp.runPythonAsync(src);
} catch (e) {
  const msg = (e && e.message) ? e.message : String(e);
  process.stderr.write(msg.endsWith("\n") ? msg : msg + "\n");
  process.exitCode = 1;
}
try { syncOut(); } catch (e) { process.stderr.write("mpvm: could not mirror mounts: " + e.message + "\n"); process.exitCode = 1; }
if (serial) {
  // done: let Node exit once stdout has drained (stdin would keep it alive)
  if (watchdog) clearTimeout(watchdog);
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.removeAllListeners(sig);
  process.stdin.destroy();
}
