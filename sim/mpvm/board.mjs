// The virtual board: the MicroPython WebAssembly VM (v1.27) as a board on a serial port.
//
//   node board.mjs --fd N --ctl N --flash HOSTDIR --sd HOSTDIR --rom DIR --state FILE
//                  [--mode boot|raw] [--cause power-on|soft|hard] [--uid HEX]
//                  [--max-bytes N] [--sync-ms N] [--heap N]
//
// --fd N     an inherited file descriptor: the master side of the board's pty (set
//            non-blocking by the parent, sim/board.py). The REPL (friendly, raw, raw-paste)
//            and the dock link both speak on it, as on a board's USB CDC port.
// --ctl N    an inherited pipe (read end, non-blocking): when the parent closes it the board
//            writes its files back and exits 0 (the way to stop it while Python runs).
// --flash/--sd  host folders copied into the VM's memory filesystem at /flash and /sd at
//            boot and mirrored back (only changed files are written; files gone from the VM
//            are removed) after each REPL command, every --sync-ms while a program runs, and
//            before every reset or exit. Their total size is bounded by --max-bytes.
// --rom DIR  .py files copied into /rom (on sys.path, not mirrored): the board's "frozen"
//            modules (the fake machine module, the simulated parts); --rom FILE=NAME copies
//            one file as /rom/NAME, --rom DIR=PKG a package folder as /rom/PKG/ (sim/hal).
// --state F  a host file that keeps the RTC's offset from the host clock across resets and
//            runs (the RTC's backup domain).
// --mode     boot: run /flash/boot.py and /flash/main.py, then the friendly REPL; raw: the
//            raw REPL at once, no main.py (a soft reset from the raw REPL, as on a board).
// --pending HEX  bytes the host sent before a reset that the last VM had not taken yet
//            (a Ctrl-C its program took as an interrupt but never saw included).
// Exit status: 0 stopped; 10 soft reset asked in the friendly REPL; 12 soft reset asked in
// the raw REPL; 11 machine.reset(); 2 the folders are too large or unreadable. The parent
// restarts the VM on 10/11/12 with the files kept, on the same pty.
// The Python side reaches the board through the JS module `vboardjs` (see sim/hal/vboardmachine.py).
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";

const args = process.argv.slice(2);
const opt = { mode: "boot", cause: "power-on", uid: "5c0000000001", maxBytes: 512 << 20,
              syncMs: 2000, heap: 4 << 20, rom: [] };
while (args.length) {
  const a = args.shift();
  if (a === "--fd") opt.fd = parseInt(args.shift(), 10);
  else if (a === "--ctl") opt.ctl = parseInt(args.shift(), 10);
  else if (a === "--flash") opt.flash = args.shift();
  else if (a === "--sd") opt.sd = args.shift();
  else if (a === "--rom") opt.rom.push(args.shift());
  else if (a === "--state") opt.state = args.shift();
  else if (a === "--mode") opt.mode = args.shift();
  else if (a === "--cause") opt.cause = args.shift();
  else if (a === "--uid") opt.uid = args.shift();
  else if (a === "--max-bytes") opt.maxBytes = parseInt(args.shift(), 10);
  else if (a === "--sync-ms") opt.syncMs = parseInt(args.shift(), 10);
  else if (a === "--heap") opt.heap = parseInt(args.shift(), 10);
  else if (a === "--pending") opt.pending = args.shift();
  else { process.stderr.write("board.mjs: unknown argument " + a + "\n"); process.exit(2); }
}
if (opt.fd === undefined || !opt.flash || !opt.sd) {
  process.stderr.write("usage: node board.mjs --fd N --ctl N --flash DIR --sd DIR [--rom DIR]...\n");
  process.exit(2);
}
const FD = opt.fd;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => { if (ms > 0) Atomics.wait(sleeper, 0, 0, ms); };

// ------------------------------------------------------------------ the port (pty master)
let host = false;             // a host has the port open (as far as the last read showed)
const rxq = [];               // Buffers read from the port, not yet taken
let rxBytes = 0;
const tmp = Buffer.alloc(65536);
if (opt.pending) { const b = Buffer.from(opt.pending, "hex"); if (b.length) { rxq.push(b); rxBytes += b.length; } }
let inPython = false;         // a program runs (Ctrl-C may interrupt it)
let interrupted = false;      // a Ctrl-C was scheduled as KeyboardInterrupt: a sleep ends
// The input a scheduled KeyboardInterrupt took (what came before the Ctrl-C, and the
// Ctrl-C), until the program it was meant for has ended. The VM raises a scheduled
// exception only at a jump, so straight-line code such as mpremote's reset
// ("time.sleep_ms(100); machine.reset()") may reset before it is raised: the Ctrl-C then
// belongs to the next VM (the host's next mpremote sent it), not to the program that
// never saw it. stop() hands these bytes on with the rest of the input.
let intrTaken = null;

function pollIn() {
  for (let i = 0; i < 16 && rxBytes < (8 << 20); i++) {
    let n = 0;
    try { n = fs.readSync(FD, tmp, 0, tmp.length, null); }
    catch (e) {
      if (e.code === "EAGAIN") { host = true; return; }
      if (e.code === "EIO") { host = false; return; }
      throw e;
    }
    if (n <= 0) return;
    host = true;
    let b = Buffer.from(tmp.subarray(0, n));
    if (inPython && Module._mp_hal_get_interrupt_char() === 3) {
      // the keyboard interrupt is armed (kbd_intr(3)): a Ctrl-C stops the running program;
      // it is taken out of the input, the bytes after it stay for the REPL
      const k = b.indexOf(3);
      if (k >= 0) {
        intrTaken = Buffer.concat([intrTaken || Buffer.alloc(0), ...rxq, b.subarray(0, k + 1)]).subarray(-(1 << 16));
        rxq.length = 0; rxBytes = 0;          // what came before it is dropped, as on a board
        b = b.subarray(k + 1);
        Module._mp_sched_keyboard_interrupt();
        interrupted = true;
      }
    }
    if (b.length) { rxq.push(b); rxBytes += b.length; }
  }
}

// bytes that may be taken in one serial read: up to and including the first Ctrl-C (the
// rest stays queued, so a program that hands the port back to the REPL on a Ctrl-C loses
// nothing that follows it)
function takeable(limit) {
  let n = 0;
  for (const c of rxq) {
    const k = c.indexOf(3);
    if (k >= 0) return Math.min(limit, n + k + 1);
    n += c.length;
    if (n >= limit) return limit;
  }
  return Math.min(limit, n);
}

function take(dst, off, length) {
  let n = 0;
  while (rxq.length && n < length) {
    const c = rxq[0], k = Math.min(c.length, length - n);
    dst.set(k === c.length ? c : c.subarray(0, k), off + n);
    n += k;
    if (k === c.length) rxq.shift(); else rxq[0] = c.subarray(k);
  }
  rxBytes -= n;
  return n;
}

function takeByte() {
  const c = rxq[0], b = c[0];
  if (c.length === 1) rxq.shift(); else rxq[0] = c.subarray(1);
  rxBytes -= 1;
  return b;
}

const OUT_MAX = 1 << 16;
const outbuf = Buffer.alloc(OUT_MAX);
let outn = 0, lastFlush = Date.now(), muted = false;
let dropOK = 0;               // the raw REPL's "OK" is not sent after a raw paste
function writeAll(buf) {
  let off = 0, waited = 0;
  while (off < buf.length) {
    try { off += fs.writeSync(FD, buf, off, buf.length - off); waited = 0; }
    catch (e) {
      if (e.code === "EIO") { host = false; return; }      // no host: output is dropped
      if (e.code !== "EAGAIN") throw e;
      pollCtl(); pollIn();
      if (!host) return;                  // the host closed the port: output is dropped
      if (waited > 5000) return;          // nobody reads the port: drop, never hang
      sleep(2); waited += 2;
    }
  }
}
function flushOut() {
  if (outn) { const b = Buffer.from(outbuf.subarray(0, outn)); outn = 0; writeAll(b); }
  lastFlush = Date.now();
}
function putByte(c) {
  if (muted) return;
  if (dropOK) {
    if (c === (dropOK === 2 ? 0x4f : 0x4b)) { dropOK--; return; }
    dropOK = 0;
  }
  outbuf[outn++] = c;
  if (outn >= OUT_MAX || Date.now() - lastFlush > 20) flushOut();
}

// ------------------------------------------------------------------ control pipe
let stopping = false;
const ctlBuf = Buffer.alloc(64);
function pollCtl() {
  if (opt.ctl === undefined || stopping) return;
  let n;
  try { n = fs.readSync(opt.ctl, ctlBuf, 0, ctlBuf.length, null); }
  catch (e) { if (e.code === "EAGAIN") return; n = 0; }
  if (n === 0) stop(0);
}
function stop(code) {
  stopping = true;
  flushOut();
  if (code >= 10 && (rxBytes || intrTaken)) {
    // a reset: what the host sent that the board has not taken yet goes to the next VM
    // (sim/board.py passes it on with --pending), as it would wait in a port's buffer;
    // so does a Ctrl-C taken for a program that reset before it saw the interrupt
    const left = Buffer.concat([...(intrTaken ? [intrTaken] : []), ...rxq]).subarray(0, 1 << 16);
    process.stderr.write("BOARD-PENDING " + left.toString("hex") + "\n");
  }
  try { syncOut(); } catch (e) { process.stderr.write("board: could not write the files back: " + e.message + "\n"); code = code || 1; }
  process.exit(code);
}

// ------------------------------------------------------------------ files
const mp = await loadMicroPython({
  heapsize: opt.heap,
  stdin: () => {                         // sys.stdin / input(): wait for a byte
    for (;;) {
      pollCtl(); pollIn();
      if (rxBytes) return takeByte();
      flushOut(); sleep(2);
    }
  },
  stdout: (b) => putByte(b[0]),
  stderr: (b) => putByte(b[0]),
  linebuffer: false,
});
const FS = mp.FS;
const Module = globalThis.Module;

function mkdirp(p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}
let loaded = 0;
function copyIn(hostDir, vmDir, filter) {
  mkdirp(vmDir);
  for (const ent of fs.readdirSync(hostDir, { withFileTypes: true })) {
    const h = path.join(hostDir, ent.name), v = vmDir + "/" + ent.name;
    if (ent.isSymbolicLink()) continue;                     // never follow a link
    if (ent.isDirectory()) { if (ent.name !== "__pycache__") copyIn(h, v, filter); }
    else if (ent.isFile() && (!filter || filter(ent.name))) {
      const st = fs.statSync(h);
      loaded += st.size;
      if (loaded > opt.maxBytes) {
        process.stderr.write("BOARD-ERROR the board's files are larger than " + opt.maxBytes +
          " bytes (at " + h + "): the virtual board keeps them in memory; remove files or raise --max-bytes\n");
        process.exit(2);
      }
      FS.writeFile(v, fs.readFileSync(h));
    }
  }
}
function vmTree(vmDir, rel, acc) {
  for (const name of FS.readdir(vmDir)) {
    if (name === "." || name === "..") continue;
    const v = vmDir + "/" + name, r = rel ? rel + "/" + name : name;
    const st = FS.lstat(v);
    if (FS.isDir(st.mode)) { acc.dirs.push(r); vmTree(v, r, acc); }
    else if (FS.isFile(st.mode)) acc.files.push(r);
  }
  return acc;
}
function hostTree(hostDir, rel, acc) {
  for (const ent of fs.readdirSync(hostDir, { withFileTypes: true })) {
    const r = rel ? rel + "/" + ent.name : ent.name;
    if (ent.isDirectory()) { acc.dirs.push(r); hostTree(path.join(hostDir, ent.name), r, acc); }
    else acc.files.push(r);
  }
  return acc;
}
const mounts = [{ host: opt.flash, vm: "/flash" }, { host: opt.sd, vm: "/sd" }];
const mirrored = new Map();   // host path -> stamp (inode:size:mtime) of what was written
const knownDirs = new Set();  // host folders the board has (had)
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
      if (mirrored.get(hp) === stamp) continue;
      const data = FS.readFile(m.vm + "/" + f);
      let same = false;
      try { const old = fs.readFileSync(hp); same = Buffer.compare(old, Buffer.from(data)) === 0; } catch (e) {}
      if (!same) {                       // create + rename: a kill never leaves half a file
        fs.writeFileSync(hp + ".vbtmp", data);
        fs.renameSync(hp + ".vbtmp", hp);
      }
      mirrored.set(hp, stamp);
    }
    const h = hostTree(m.host, "", { dirs: [], files: [] });
    // a file removed on the board is removed from the folder; a file the host put there
    // while the board ran (never loaded, never written back) is left alone
    for (const f of h.files) {
      const hp = path.join(m.host, f);
      if (!keep.has(f) && mirrored.has(hp)) { fs.rmSync(hp, { force: true }); mirrored.delete(hp); }
    }
    const vdirs = new Set(t.dirs);
    for (const d of h.dirs.reverse()) {
      const hp = path.join(m.host, d);
      if (!vdirs.has(d) && knownDirs.has(hp)) { try { fs.rmdirSync(hp); knownDirs.delete(hp); } catch (e) { /* not empty: host files */ } }
    }
    for (const d of t.dirs) knownDirs.add(path.join(m.host, d));
  }
  lastSync = Date.now();
}
let lastSync = Date.now();
function syncIfDue() { if (Date.now() - lastSync >= opt.syncMs) syncOut(); }

for (const m of mounts) {
  fs.mkdirSync(m.host, { recursive: true });
  copyIn(m.host, m.vm, (n) => !n.endsWith(".vbtmp"));
  // what was loaded is what the host has: nothing to write back until it changes
  const t0 = vmTree(m.vm, "", { dirs: [], files: [] });
  for (const d of t0.dirs) knownDirs.add(path.join(m.host, d));
  for (const f of t0.files) {
    const st = FS.stat(m.vm + "/" + f);
    mirrored.set(path.join(m.host, f), st.ino + ":" + st.size + ":" + st.mtime.getTime());
  }
}
for (const r of opt.rom) {
  if (r.includes("=")) {
    const [h, name] = r.split("=");
    if (fs.statSync(h).isDirectory()) copyIn(h, "/rom/" + name, (n) => n.endsWith(".py") || n.endsWith(".mpy"));
    else { mkdirp("/rom"); FS.writeFile("/rom/" + name, fs.readFileSync(h)); }
  }
  else copyIn(r, "/rom", (n) => n.endsWith(".py") || n.endsWith(".mpy"));
}

// ------------------------------------------------------------------ the RTC's backup domain
let rtcOffset = 0, boardState = {};
try { boardState = JSON.parse(fs.readFileSync(opt.state, "utf8")) || {}; } catch (e) {}
if (Number.isFinite(Number(boardState.rtc_offset_ms))) rtcOffset = Math.round(Number(boardState.rtc_offset_ms));
function saveState() {
  if (!opt.state) return;
  boardState.rtc_offset_ms = rtcOffset;
  fs.writeFileSync(opt.state + ".tmp", JSON.stringify(boardState));
  fs.renameSync(opt.state + ".tmp", opt.state);
}

// ------------------------------------------------------------------ /dev/vbserial
const dev = FS.makedev(64, 1);
FS.registerDevice(dev, {
  open(stream) { stream.seekable = false; },
  close(stream) {},
  read(stream, buffer, offset, length, pos) {
    pollIn();
    const n = takeable(length);
    return n ? take(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length), offset, n) : 0;
  },
  write(stream, buffer, offset, length, pos) {
    flushOut();
    writeAll(Buffer.from(new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length)));
    return length;
  },
});
FS.mkdev("/dev/vbserial", 0o666, dev);

let resetAsked = null;
mp.registerJsModule("vboardjs", {
  // the port
  serial_any: () => { inPython = true; pollCtl(); pollIn(); syncIfDue(); return takeable(1 << 20); },
  serial_connected: () => host,
  // time
  sleep_ms: (ms) => {
    inPython = true;
    flushOut();
    const end = Date.now() + ms;
    interrupted = false;
    for (;;) {
      pollCtl(); pollIn(); syncIfDue();
      if (interrupted) { interrupted = false; return false; }   // KeyboardInterrupt follows
      const left = end - Date.now();
      if (left <= 0) return true;
      sleep(Math.min(left, 10));
    }
  },
  rtc_ms: () => String(Date.now() + rtcOffset),   // a string: large numbers do not cross as ints
  set_rtc_ms: (ms) => { rtcOffset = Number(ms) - Date.now(); saveState(); return true; },
  // the chip
  random: (n) => { const b = new Uint8Array(n); crypto.getRandomValues(b); return b; },
  unique_id: () => opt.uid,
  time_ms: () => String(Date.now()),
  reset_cause: () => opt.cause,
  sync: () => { syncOut(); return true; },
  reset: () => { flushOut(); stop(11); },
});

mp.runPython("import sys, os\nsys.path[:] = ['', '/flash', '/flash/lib', '/rom']\nos.chdir('/flash')\n" +
             "import vboardos\nvboardos.install()\ndel vboardos\n" +
             "import vboardtime\nsys.modules['time'] = vboardtime\ndel vboardtime");
process.stderr.write("BOARD-READY " + JSON.stringify({ mode: opt.mode, cause: opt.cause, loaded }) + "\n");

// ------------------------------------------------------------------ boot.py, main.py
function runFile(name) {
  inPython = true;
  try {
    mp.runPython("import vboardboot\nvboardboot.run(" + JSON.stringify(name) + ")");
  } catch (e) {
    const msg = (e && e.message) ? e.message : String(e);
    for (const c of Buffer.from(msg.replace(/\n/g, "\r\n"))) putByte(c);
  }
  inPython = false;
  intrTaken = null;                      // the program has ended: its interrupt is spent
  flushOut();
}
if (opt.mode !== "raw") {
  runFile("boot.py");
  runFile("main.py");
}

// ------------------------------------------------------------------ the REPL
if (opt.mode === "raw") {
  muted = true; mp.replInit(); muted = false;
  mp.replProcessChar(1);                 // the raw REPL, as after a soft reset from it
} else {
  mp.replInit();
}
flushOut();
let rawMode = opt.mode === "raw";
let rawLine = 0;               // bytes on the current raw REPL line
let paste = null;              // raw-paste mode: { code: [], remain } while receiving
let esc = 0;                   // bytes of "\x05A\x01" (enter raw-paste) seen at a line start
const WINDOW = 128, PASTE_MAX = 4 << 20;
const emit = (s) => { for (const c of Buffer.from(s, "latin1")) putByte(c); };
function feed(c) {
  if (c === 1) { rawMode = true; rawLine = 0; }
  else if (c === 2) rawMode = false;
  else if (rawMode && (c === 3 || c === 4)) rawLine = 0;
  else if (rawMode) rawLine++;
  inPython = true;
  const r = mp.replProcessChar(c);
  inPython = false;
  intrTaken = null;                      // what ran has ended: its interrupt is spent
  if (r) {                              // a soft reset: the same files, a fresh VM
    emit("MPY: soft reboot\r\n");
    stop(rawMode ? 12 : 10);
  }
}
// Raw-paste mode (the protocol mpremote prefers): the VM's own raw-paste reader waits for
// stdin in a loop the host never gets out of, so the board takes the pasted code here with
// the same flow control (windows of WINDOW bytes, 0x01 for each new window, 0x04 at the
// end), then runs it through the raw REPL, whose "OK" is not sent (raw-paste has none).
function rawPasteByte(c) {
  if (c === 4 || c === 3) {
    const code = paste.code;
    paste = null;
    emit("\x04");
    if (c === 3) { emit("\x04KeyboardInterrupt:\r\n\x04>"); return; }
    for (const b of code) feed(b);
    dropOK = 2;
    feed(4);
    return;
  }
  if (paste.code.length < PASTE_MAX) paste.code.push(c);
  if (--paste.remain === 0) { emit("\x01"); paste.remain = WINDOW; }
}
function replByte(c) {
  if (paste) { rawPasteByte(c); return; }
  if (rawMode && rawLine === 0 && esc === 0 && c === 5) { esc = 1; return; }
  if (esc === 1) {
    if (c === 0x41) { esc = 2; return; }
    esc = 0; feed(5); feed(c); return;
  }
  if (esc === 2) {
    esc = 0;
    if (c === 1) {
      emit("R\x01" + String.fromCharCode(WINDOW & 0xff, WINDOW >> 8) + "\x01");
      paste = { code: [], remain: WINDOW };
      return;
    }
    feed(5); feed(0x41); feed(c); return;
  }
  feed(c);
}
let dirty = false, lastIn = 0;
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, () => stop(0));
for (;;) {
  pollCtl(); pollIn();
  if (rxBytes) {
    while (rxBytes) replByte(takeByte());
    flushOut();
    dirty = true; lastIn = Date.now();
  } else {
    flushOut();
    if (dirty && Date.now() - lastIn > 50) { syncOut(); dirty = false; }
    // right after input, poll again at once (a host in a raw REPL exchange answers
    // within ms); a quiet line is polled every few ms, an unopened port less often
    const quiet = Date.now() - lastIn;
    if (quiet < 100) await new Promise((res) => setImmediate(res));
    else await new Promise((res) => setTimeout(res, host ? 3 : 20));
  }
}

