// edgekit's JS runner: the part that is the same for every engine and every transport.
//
// A runner holds one model in one engine and answers four requests:
//   load  {threads, ...}           -> facts about the model and the engine (engine.load's reply)
//   run   {data, shapes}           -> outputs for a batch: every input in info.inputs order, each
//                                     block whole in data, its shape in shapes; every output
//                                     (info.outputs order) in one array: {output, shapes, names}
//   first {data, shapes}           -> the first inference's time in ms
//   time  {data, shapes, warmup, runs, min_time_s, max_time_s}
//                                  -> per-inference times in ms, measured here, in JS
//   profile {data, shapes, warmup, runs}
//                                  -> per-kernel times of `runs` inferences, where the engine can
//                                     give them (engine.profile: TF.js's tf.profile)
// Data travels as float32 both ways. An integer tensor (int8 at a quantized model's boundary, int32
// or int64 ids) carries integer values, exact in float32 up to 2^24; the engine makes its own typed
// array from them when it builds its inputs, once, outside any timed call.
//
// The transport (node-runner.mjs: a Node process; page/index.html: a Chromium page) supplies the
// engine (engines/tfjs.mjs, engines/litert.mjs, engines/ort.mjs) and the clock. An engine answers:
//   load(req)              -> {inputs, outputs: [{name, shape, dtype}], batch, ...facts}
//                             batch: rows one call takes at most (a fixed batch is padded)
//   feeds(blocks)          -> the engine's inputs for [{data: Float32Array, shape}] (info.inputs order)
//   infer(feeds)           -> [{out: TypedArray, shape}] per output, or a Promise of it
//   dispose(feeds)
//   profile(feeds, runs, consoleCatch, req)   (optional) per-operator times of `runs` inferences
//
// Example (Node):
//   const runner = makeRunner(makeTFJSEngine(tf, {loadArtifacts, wasm}), {now: () => performance.now()});
//   await runner.load({backend: "wasm", threads: 1});
//   const {output, shapes} = await runner.run({data: float32Array, shapes: [[1, 8, 8, 1]]});

// What an engine prints to the console while `consoleCatch.active` is kept in `lines`, not printed: ONNX
// Runtime Web's WebAssembly build prints its profile there. Installed when this module loads, before any
// engine does, because an Emscripten module binds console.log when it starts.
export const consoleCatch = {active: false, lines: []};
for (const level of ["log", "info", "warn", "error"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    if (consoleCatch.active) consoleCatch.lines.push(args.map(String).join(" "));
    else original(...args);
  };
}

export function makeRunner(engine, host) {
  let info = null;

  async function load(req) {
    const t0 = host.now();
    info = await engine.load(req);
    if (info.init_ms === undefined) info.init_ms = host.now() - t0;
    return info;
  }

  function needModel() {
    if (!info) throw new Error("no model loaded");
  }

  function prod(shape) {
    return shape.reduce((a, b) => a * b, 1);
  }

  // The blocks of rows [first, first + rows) of every input, padded with zeros to `pad` rows.
  function blocks(req, first, rows, pad) {
    const out = [];
    let offset = 0;
    for (const shape of req.shapes) {
      const per = prod(shape.slice(1));
      let data = req.data.subarray(offset + first * per, offset + (first + rows) * per);
      if (pad > rows) {
        const padded = new Float32Array(pad * per);
        padded.set(data);
        data = padded;
      }
      out.push({data, shape: [Math.max(rows, pad), ...shape.slice(1)]});
      offset += shape[0] * per;
    }
    return out;
  }

  async function infer(feeds) {
    const r = engine.infer(feeds);
    return r instanceof Promise ? await r : r;
  }

  function fixedBatch() {
    const b = info.inputs[0].shape[0];
    return typeof b === "number" && b > 0 ? b : null;
  }

  async function run(req) {
    needModel();
    const total = req.shapes[0][0];
    const fixed = fixedBatch();
    const step = fixed || info.batch || 64;
    const perOutput = info.outputs.map(() => []);
    let shapes = null;
    for (let i = 0; i < total; i += step) {
      const n = Math.min(step, total - i);
      const feeds = engine.feeds(blocks(req, i, n, fixed || 0));
      let ys;
      try {
        ys = await infer(feeds);
      } finally {
        engine.dispose(feeds);
      }
      ys.forEach((y, k) => {
        const per = prod(y.shape.slice(1));
        perOutput[k].push(y.out.subarray(0, n * per));  // a padded batch's extra rows dropped
      });
      shapes = ys.map((y) => [total, ...y.shape.slice(1)]);
    }
    const size = perOutput.reduce((a, chunks) => a + chunks.reduce((b, c) => b + c.length, 0), 0);
    const output = new Float32Array(size);
    let off = 0;
    for (const chunks of perOutput) for (const c of chunks) { output.set(c, off); off += c.length; }
    return {output, shapes, names: info.outputs.map((o) => o.name)};
  }

  function bind(req) {
    // One sample as input, made once: a timed call is exactly one inference plus reading it.
    needModel();
    const fixed = fixedBatch();
    const one = blocks(req, 0, 1, 0);
    const rows = fixed || 1;
    const feeds = engine.feeds(one.map(({data, shape}) => {
      const per = data.length;
      const full = new Float32Array(rows * per);
      for (let r = 0; r < rows; r++) full.set(data, r * per);
      return {data: full, shape: [rows, ...shape.slice(1)]};
    }));
    return {feeds, dispose: () => engine.dispose(feeds)};
  }

  async function time(req) {
    const {feeds, dispose} = bind(req);
    try {
      // The first call tells whether this engine answers synchronously: sync calls are timed
      // without an await per call (an await costs more than a small model's inference).
      const r0 = engine.infer(feeds);
      const isAsync = r0 instanceof Promise;
      if (isAsync) await r0;
      for (let i = 0; i < (req.warmup ?? 10); i++) { const r = engine.infer(feeds); if (isAsync) await r; }
      const runs = req.runs ?? 100;
      const minMs = (req.min_time_s ?? 0.5) * 1000;
      const maxMs = (req.max_time_s ?? 30) * 1000;
      const samples = [];
      const start = host.now();
      for (;;) {
        const a = host.now();
        const r = engine.infer(feeds);
        if (isAsync) await r;
        const b = host.now();
        samples.push(b - a);
        if (samples.length >= runs && b - start >= minMs) break;
        if (samples.length >= 100000 || (b - start >= maxMs && samples.length >= 1)) break;
      }
      return {samples_ms: samples, async: isAsync};
    } finally {
      dispose();
    }
  }

  async function first(req) {
    // The first inference after load: kernels compile, buffers are allocated.
    const {feeds, dispose} = bind(req);
    try {
      const t0 = host.now();
      await infer(feeds);
      return {first_ms: host.now() - t0};
    } finally {
      dispose();
    }
  }

  async function profile(req) {
    if (!engine.profile) throw new Error(`the ${info ? info.engine : "JS"} engine gives no per-operator times`);
    const {feeds, dispose} = bind(req);
    try {
      try {
        for (let i = 0; i < (req.warmup ?? 5); i++) await infer(feeds);
      } catch (e) {
        // a model that stops part way: the engine's profile says where (TF.js: the kernels before the failure)
      }
      return await engine.profile(feeds, req.runs ?? 100, consoleCatch, req);
    } finally {
      dispose();
    }
  }

  return {load, run, time, first, profile};
}
