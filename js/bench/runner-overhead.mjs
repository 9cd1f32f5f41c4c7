// Per-call overhead of edgekit's runner (runner-core's `time`) against a timing loop written
// directly here, in the same Node process, on the same model, backend and input.
//
//   node js/bench/runner-overhead.mjs MODEL_DIR/model.json [repeats] [runs]
//
// Prints one JSON line: the p50 (ms) of each repeat for both loops, interleaved so that
// machine noise hits both alike.
import fs from "node:fs";
import path from "node:path";
import {performance} from "node:perf_hooks";

for (const k of ["log", "info", "warn", "debug"]) console[k] = (...a) => process.stderr.write(a.join(" ") + "\n");
const tf = await import("@tensorflow/tfjs");
const wasm = await import("@tensorflow/tfjs-backend-wasm");
const {makeRunner} = await import("../src/runner-core.mjs");
const {makeTFJSEngine} = await import("../src/engines/tfjs.mjs");

const modelJson = path.resolve(process.argv[2]);
const repeats = Number(process.argv[3] || 7);
const runs = Number(process.argv[4] || 300);

async function loadArtifacts() {
  const json = JSON.parse(fs.readFileSync(modelJson, "utf8"));
  return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs = [];
    const bufs = [];
    for (const g of manifest) {
      specs.push(...g.weights);
      for (const p of g.paths) {
        const b = fs.readFileSync(path.join(path.dirname(modelJson), p));
        bufs.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      }
    }
    return [specs, tf.io.concatenateArrayBuffers(bufs)];
  });
}

const runner = makeRunner(makeTFJSEngine(tf, {loadArtifacts, wasm}), {now: () => performance.now()});
const info = await runner.load({backend: "wasm", threads: 1});
const shape = info.inputs[0].shape.map((d) => (d > 0 ? d : 1));
const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => (i % 17) / 17);

// The same model object the runner loaded, so only the loop differs.
const model = await tf.loadGraphModel({load: loadArtifacts});
const x = tf.tensor(data, shape, "float32");

function median(a) {
  const s = [...a].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)];
}

function rawLoop() {
  for (let i = 0; i < 10; i++) { const y = model.execute(x); y.dataSync(); y.dispose(); }
  const t = [];
  for (let i = 0; i < runs; i++) {
    const a = performance.now();
    const y = model.execute(x);
    y.dataSync();
    y.dispose();
    t.push(performance.now() - a);
  }
  return median(t);
}

async function runnerLoop() {
  const r = await runner.time({data, shapes: [shape], warmup: 10, runs, min_time_s: 0});
  return median(r.samples_ms);
}

const raw = [];
const ours = [];
for (let i = 0; i < repeats; i++) {
  if (i % 2 === 0) { raw.push(rawLoop()); ours.push(await runnerLoop()); }
  else { ours.push(await runnerLoop()); raw.push(rawLoop()); }
}
process.stdout.write(JSON.stringify({raw_p50_ms: raw, runner_p50_ms: ours, backend: info.backend}) + "\n");
