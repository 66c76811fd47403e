"use strict";
// The Node backend's runner (passed with -e; the code arrives on stdin, never in argv).
// It builds `context`, captures console.*, runs the code as a function body and writes one
// JSON report to the result pipe. Classification of errors is done by the host.
const fs = require("fs");
const writeSync = fs.writeSync;
const stringify = JSON.stringify;
const byteLength = Buffer.byteLength;
const reallyExit = process.reallyExit.bind(process);
const String_ = String;
const payload = JSON.parse(fs.readFileSync(0, "utf8"));
const fd = payload.fd;
const cap = payload.cap;
const report = (obj) => {
  try { writeSync(fd, stringify(obj) + "\n"); } catch (e) { /* the host sees no report */ }
  reallyExit(0);
};
const field = (e, name) => {
  try { const v = e[name]; return v === undefined || v === null ? "" : String_(v); }
  catch (x) { return ""; }
};
const failure = (phase, e) => {
  const isObject = e !== null && (typeof e === "object" || typeof e === "function");
  report({
    phase,
    name: isObject ? field(e, "name") : "",
    message: isObject ? field(e, "message") : (() => { try { return String_(e); } catch (x) { return "?"; } })(),
    code: isObject ? field(e, "code") : "",
  });
};
// hardening, not the boundary: Node 20's permission model does not cover signals
const denied = (what) => () => {
  const e = new Error(`Access to this API has been restricted: ${what}`);
  e.code = "ERR_ACCESS_DENIED";
  throw e;
};
for (const name of ["kill", "_kill", "_debugProcess"]) {
  Object.defineProperty(process, name, { value: denied(`process.${name}`), writable: false, configurable: false });
}
try { require("v8").setFlagsFromString = denied("v8.setFlagsFromString"); } catch (e) { /* absent */ }
// a coarse clock (hardening, as above): whole milliseconds from performance.now() and
// timeOrigin, process.hrtime() / hrtime.bigint() and process.uptime(); the APIs that read the
// precise clock some other way (marks, measures, histograms, timing entries) are refused. The
// originals are captured here, bound, and locked (not writable, not configurable) everywhere the
// code can reach them: the global, perf_hooks, the Performance prototype, process.
{
  const floor = Math.floor;
  const lock = (obj, name, value) => Object.defineProperty(obj, name, { value, writable: false, enumerable: true, configurable: false });
  const hooks = require("perf_hooks");
  const perf = hooks.performance;
  const Perf = Object.getPrototypeOf(perf);
  const preciseNow = Perf.now.bind(perf);
  const now = () => floor(preciseNow());
  const origin = floor(perf.timeOrigin);
  const kept = { now, timeOrigin: origin, toJSON: () => ({ timeOrigin: origin }) };
  for (const name of Object.getOwnPropertyNames(Perf)) {
    if (name !== "constructor") lock(Perf, name, name in kept ? kept[name] : denied(`performance.${name}`));
  }
  Object.freeze(Perf);
  Object.freeze(perf);
  lock(globalThis, "performance", perf);
  for (const name of ["monitorEventLoopDelay", "createHistogram"]) lock(hooks, name, denied(`perf_hooks.${name}`));
  for (const name of ["PerformanceEntry", "PerformanceMark", "PerformanceMeasure", "PerformanceObserver",
    "PerformanceObserverEntryList", "PerformanceResourceTiming"]) {
    const refuse = denied(name);
    if (name in globalThis) lock(globalThis, name, refuse);
    if (name in hooks) lock(hooks, name, refuse);
  }
  const preciseBig = process.hrtime.bigint.bind(process);
  const MS = 1000000n;
  const bigint = () => { const t = preciseBig(); return t - (t % MS); };
  const hrtime = (previous) => {
    let t = bigint();
    if (Array.isArray(previous)) t -= BigInt(previous[0]) * 1000000000n + BigInt(previous[1]);
    return [Number(t / 1000000000n), Number(t % 1000000000n)];
  };
  lock(hrtime, "bigint", bigint);
  lock(process, "hrtime", Object.freeze(hrtime));
  const preciseUptime = process.uptime.bind(process);
  lock(process, "uptime", () => floor(preciseUptime() * 1000) / 1000);
  const preciseCpu = process.cpuUsage.bind(process);
  lock(process, "cpuUsage", (previous) => {
    const u = preciseCpu(previous);
    return { user: u.user - (u.user % 1000), system: u.system - (u.system % 1000) };
  });
  lock(process, "resourceUsage", denied("process.resourceUsage"));
}
let used = 0;
const fmt = (args) => {
  let s = "";
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    let t;
    if (typeof a === "string") t = a;
    else {
      try { t = stringify(a); if (t === undefined) t = String_(a); } catch (e) { t = String_(a); }
    }
    s += (i ? " " : "") + t;
  }
  return s;
};
const emit = (out) => (...args) => {
  const text = fmt(args) + "\n";
  used += byteLength(text);
  if (used > cap) report({ phase: "output", name: "", message: `output exceeds the limit of ${cap} bytes`, code: "" });
  writeSync(out, text);
};
const sandboxConsole = { log: emit(1), info: emit(1), debug: emit(1), error: emit(2), warn: emit(2) };
globalThis.console = sandboxConsole;
const context = JSON.parse(payload.context);
writeSync(fd, "ready\n");
let fn;
try { fn = (0, eval)(payload.source); } catch (e) { failure("compile", e); }
let value;
try { value = fn.call(undefined, context, sandboxConsole, require); } catch (e) { failure("run", e); }
let json;
try { json = stringify(value); } catch (e) { failure("result", e); }
if (json === undefined) json = "null";
if (json.length > cap) report({ phase: "result", name: "RangeError", message: `the return value exceeds ${cap} bytes`, code: "ERR_OUTPUT_LIMIT" });
report({ ok: true, output: json });
