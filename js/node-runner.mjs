// edgekit's Node transport: one long-lived Node process per session, one model in one engine.
//
//   node js/node-runner.mjs MODEL_DIR/model.json            TF.js (tfjs-node)
//   node js/node-runner.mjs --engine ort MODEL.onnx         ONNX Runtime Web's wasm (ort-web-node)
//
// Requests arrive one JSON object per line on stdin; each gets one JSON line on stdout:
//   {"id": 1, "cmd": "load", "backend": "wasm", "threads": 1}
//   {"id": 2, "cmd": "run",  "input": "x.bin", "shapes": [[64, 8, 8, 1]], "output": "y.bin"}
//   {"id": 3, "cmd": "first", "input": "x.bin", "shapes": [[1, 8, 8, 1]]}
//   {"id": 4, "cmd": "time", "input": "x.bin", "shapes": [[1, 8, 8, 1]], "warmup": 10, "runs": 100}
//   {"id": 5, "cmd": "memory"}
//   {"id": 6, "cmd": "profile", "input": "x.bin", "shapes": [[1, 8, 8, 1]], "runs": 100}
// Inputs and outputs are raw little-endian float32 files. Replies: {"id", "ok": true, ...}
// or {"id", "ok": false, "error": "..."}. Timing happens here, with performance.now(), so
// it measures inference in JS, not the pipe. Anything TF.js prints goes to stderr.

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import {performance} from "node:perf_hooks";

// Keep stdout for the protocol alone: TF.js and Emscripten log with console.*.
for (const k of ["log", "info", "warn", "debug"]) console[k] = (...a) => process.stderr.write(a.join(" ") + "\n");

const {makeRunner, consoleCatch} = await import("./src/runner-core.mjs");
// Emscripten (ONNX Runtime Web's profile) writes to fd 1 itself: while the runner catches what is printed,
// that goes to consoleCatch too, never into the protocol's stdout.
const writeSync = fs.writeSync;
fs.writeSync = (fd, data, ...rest) => {
  if (!consoleCatch.active || (fd !== 1 && fd !== 2)) return writeSync(fd, data, ...rest);
  const text = typeof data === "string" ? data : Buffer.from(data.buffer || data, data.byteOffset || 0, data.byteLength).toString();
  consoleCatch.lines.push(text);
  return typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
};
const args = process.argv.slice(2);
const engineName = args[0] === "--engine" ? args[1] : "tfjs";
const modelPath = path.resolve((args[0] === "--engine" ? args[2] : args[0]) || "");
const modelJson = modelPath;

// Weight files must lie inside the model's folder: a model.json naming ../../etc/passwd is refused.
export function weightFiles(modelJsonPath, manifest) {
  const dir = path.dirname(modelJsonPath);
  const files = [];
  for (const group of manifest || []) {
    for (const p of group.paths || []) {
      const full = path.resolve(dir, p);
      if (!full.startsWith(dir + path.sep)) {
        throw new Error(`weight path '${p}' in ${path.basename(modelJsonPath)} leaves the model's folder; refusing it`);
      }
      files.push(full);
    }
  }
  return files;
}

let tf = null;

async function loadArtifacts() {
  const json = JSON.parse(fs.readFileSync(modelJson, "utf8"));
  return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs = [];
    for (const group of manifest) specs.push(...group.weights);
    const buffers = weightFiles(modelJson, manifest).map((f) => {
      if (!fs.existsSync(f)) throw new Error(`weight shard ${path.basename(f)} is missing`);
      const b = fs.readFileSync(f);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    });
    return [specs, tf.io.concatenateArrayBuffers(buffers)];
  });
}

function readFloat32(file, shapes) {
  const b = fs.readFileSync(file);
  const n = shapes.reduce((sum, s) => sum + s.reduce((a, c) => a * c, 1), 0);
  if (b.byteLength !== n * 4) throw new Error(`${file} holds ${b.byteLength} bytes, expected ${n * 4} for shapes ${JSON.stringify(shapes)}`);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

async function makeEngine() {
  if (engineName === "tfjs") {
    tf = await import("@tensorflow/tfjs");
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    const {makeTFJSEngine} = await import("./src/engines/tfjs.mjs");
    return makeTFJSEngine(tf, {loadArtifacts, wasm});
  }
  if (engineName === "ort") {
    const ort = await import("onnxruntime-web");
    const {makeORTEngine} = await import("./src/engines/ort.mjs");
    return makeORTEngine(ort, {modelBytes: async () => new Uint8Array(fs.readFileSync(modelPath))});
  }
  throw new Error(`unknown engine '${engineName}' (tfjs, ort)`);
}

const runner = makeRunner(await makeEngine(), {now: () => performance.now()});

async function handle(req) {
  switch (req.cmd) {
    case "load":
      return await runner.load(req);
    case "run": {
      const {output, shapes, names} = await runner.run({...req, data: readFloat32(req.input, req.shapes)});
      fs.writeFileSync(req.output, Buffer.from(output.buffer, output.byteOffset, output.byteLength));
      return {shapes, names};
    }
    case "first":
      return await runner.first({...req, data: readFloat32(req.input, req.shapes)});
    case "time":
      return await runner.time({...req, data: readFloat32(req.input, req.shapes)});
    case "profile":
      return await runner.profile({...req, data: readFloat32(req.input, req.shapes)});
    case "memory":
      return {rss_mb: process.memoryUsage().rss / 1048576};
    default:
      throw new Error(`unknown command '${req.cmd}'`);
  }
}

const rl = readline.createInterface({input: process.stdin, terminal: false});
for await (const line of rl) {
  if (!line.trim()) continue;
  let req = {};
  let reply;
  try {
    req = JSON.parse(line);
    reply = {id: req.id, ok: true, ...(await handle(req))};
  } catch (e) {
    reply = {id: req.id, ok: false, error: String((e && e.message) || e).split("\n")[0]};
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
