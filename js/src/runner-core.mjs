// The part of edgekit's TF.js runner that is the same in Node and in the browser.
//
// A runner holds one graph model on one backend and answers four requests:
//   load  {backend, threads}       -> facts about the model and the backend actually used
//   run   {data, shape}            -> outputs for a batch of float32 inputs
//         {data, shapes}           -> several inputs (info.inputs order, each block whole in data):
//                                     every output (info.outputs order) in one array, with its shape
//   first {data, shape}            -> the first inference's time in ms
//   time  {data, shape, warmup, runs, min_time_s, max_time_s}
//                                  -> per-inference times in ms, measured here, in JS
// The host (node-runner.mjs, page/index.html) supplies `tf`, the clock, and a function that
// returns the model's artifacts (topology + weights) from wherever it lives, and optionally
// the wasm backend module (`host.wasm`) where it is not `tf.wasm`.
//
// Example (Node):
//   const runner = makeRunner(tf, {now: () => performance.now(), loadArtifacts});
//   await runner.load({backend: "wasm", threads: 1});
//   const {output, shape} = await runner.run({data: float32Array, shape: [1, 8, 8, 1]});

export function makeRunner(tf, host) {
  let model = null;
  let info = null;

  async function setBackend(backend, threads) {
    const wasm = host.wasm || tf.wasm;
    if (backend === "wasm" && threads && wasm && wasm.setThreadsCount) {
      wasm.setThreadsCount(threads);
    }
    let ok = false;
    try {
      ok = await tf.setBackend(backend);
    } catch (e) {
      throw new Error(`the ${backend} backend could not start: ${e.message || e}`);
    }
    if (!ok || tf.getBackend() !== backend) {
      throw new Error(`the ${backend} backend could not start here`);
    }
    await tf.ready();
  }

  function inputSpec(m) {
    // Bound by name: a converted SavedModel's signature names its inputs and outputs (inputNodes /
    // outputNodes), whatever its tensors are called (Identity_2, ...).
    const inNames = m.inputNodes || [], outNames = m.outputNodes || [];
    const inputs = m.inputs.map((t, i) => ({name: inNames[i] || t.name, shape: t.shape, dtype: t.dtype}));
    const outputs = m.outputs.map((t, i) => ({name: outNames[i] || t.name, shape: t.shape, dtype: t.dtype}));
    return {inputs, outputs};
  }

  async function load(req) {
    const backend = req.backend || "wasm";
    await setBackend(backend, req.threads);
    const t0 = host.now();
    const artifacts = await host.loadArtifacts();
    model = await tf.loadGraphModel({load: async () => artifacts});
    const initMs = host.now() - t0;
    const spec = inputSpec(model);
    const weightDtypes = {};
    for (const w of artifacts.weightSpecs || []) {
      const dt = w.quantization ? `${w.quantization.dtype} (${w.dtype} at run time)` : w.dtype;
      weightDtypes[dt] = (weightDtypes[dt] || 0) + 1;
    }
    const ops = {};
    for (const node of (artifacts.modelTopology && artifacts.modelTopology.node) || []) {
      ops[node.op] = (ops[node.op] || 0) + 1;
    }
    let threads = null;
    const wasm = host.wasm || tf.wasm;
    if (backend === "wasm" && wasm && wasm.getThreadsCount) {
      try { threads = wasm.getThreadsCount(); } catch (e) { threads = null; }
    }
    info = {
      backend: tf.getBackend(),
      tfjs_version: tf.version.tfjs,
      threads,
      init_ms: initMs,
      input: spec.inputs[0],
      output: spec.outputs[0],
      inputs: spec.inputs,
      outputs: spec.outputs,
      weight_dtypes: weightDtypes,
      ops,
    };
    return info;
  }

  function needModel() {
    if (!model) throw new Error("no model loaded");
  }

  // Graphs with control flow (a recurrent layer's while loop) only run with executeAsync();
  // the first call finds out, and every later call uses the same path.
  let asyncMode = false;

  function read(y) {
    // dataSync() waits for the result on every backend, so a timed call covers the whole inference.
    if (Array.isArray(y)) return y.map(read);
    const out = y.dataSync();
    const shape = y.shape;
    y.dispose();
    return {out, shape};
  }

  function execute(x) {
    // several inputs: a map by input name, and every output asked for by name
    return x instanceof tf.Tensor ? model.execute(x) : model.execute(x, info.outputs.map((o) => o.name));
  }

  function predictSync(x) {
    return read(execute(x));
  }

  async function predict(x) {
    if (!asyncMode) {
      try {
        return predictSync(x);
      } catch (e) {
        if (!/executeAsync/.test(String(e && e.message))) throw e;
        asyncMode = true;
      }
    }
    try {
      return read(x instanceof tf.Tensor ? await model.executeAsync(x)
        : await model.executeAsync(x, info.outputs.map((o) => o.name)));
    } catch (e) {
      throw new Error(`TF.js cannot run this graph's control flow (a recurrent layer's while loop): ${e.message || e}`);
    }
  }

  // Inputs travel as float32 (integer ids up to 2^24 exactly); an int32 input (token ids) gets int32.
  function inputDtype() {
    return info.input.dtype === "int32" ? "int32" : "float32";
  }

  // Several inputs: req.shapes gives each input's shape, req.data holds them one after the other.
  function namedInputs(req, first, rows) {
    const feeds = {};
    let offset = 0;
    req.shapes.forEach((shape, k) => {
      const spec = info.inputs[k];
      const per = shape.slice(1).reduce((a, b) => a * b, 1);
      const block = req.data.subarray(offset + first * per, offset + (first + rows) * per);
      feeds[spec.name] = tf.tensor(block, [rows, ...shape.slice(1)], spec.dtype === "int32" ? "int32" : "float32");
      offset += shape[0] * per;
    });
    return feeds;
  }

  function disposeAll(x) {
    if (x instanceof tf.Tensor) x.dispose(); else Object.values(x).forEach((t) => t.dispose());
  }

  async function runNamed(req) {
    const total = req.shapes[0][0];
    const perOutput = info.outputs.map(() => []);
    let shapes = null;
    for (let i = 0; i < total; i += 64) {
      const n = Math.min(64, total - i);
      const feeds = namedInputs(req, i, n);
      const ys = await predict(feeds);
      disposeAll(feeds);
      ys.forEach((y, k) => perOutput[k].push(y.out));
      shapes = ys.map((y) => [total, ...y.shape.slice(1)]);
    }
    const size = perOutput.reduce((a, chunks) => a + chunks.reduce((b, c) => b + c.length, 0), 0);
    const output = new Float32Array(size);
    let off = 0;
    for (const chunks of perOutput) for (const c of chunks) { output.set(c, off); off += c.length; }
    return {output, shape: shapes[0], shapes, names: info.outputs.map((o) => o.name)};
  }

  async function run(req) {
    needModel();
    if (req.shapes) return await runNamed(req);
    const shape = req.shape;
    const per = shape.slice(1).reduce((a, b) => a * b, 1);
    const fixed = info.input.shape[0] > 0 ? info.input.shape[0] : null;
    const step = fixed || 64;
    const chunks = [];
    let outShape = null;
    for (let i = 0; i < shape[0]; i += step) {
      const n = Math.min(step, shape[0] - i);
      let slice = req.data.subarray(i * per, (i + n) * per);
      let rows = n;
      if (fixed && n < fixed) {  // a fixed batch size: pad the last chunk with zeros
        const padded = new Float32Array(fixed * per);
        padded.set(slice);
        slice = padded;
        rows = fixed;
      }
      const x = tf.tensor(slice, [rows, ...shape.slice(1)], inputDtype());
      const {out, shape: ys} = await predict(x);
      x.dispose();
      const perOut = ys.slice(1).reduce((a, b) => a * b, 1);
      chunks.push(out.subarray(0, n * perOut));
      outShape = ys.slice(1);
    }
    const total = chunks.reduce((a, c) => a + c.length, 0);
    const output = new Float32Array(total);
    let off = 0;
    for (const c of chunks) { output.set(c, off); off += c.length; }
    return {output, shape: [shape[0], ...outShape]};
  }

  function bind(req) {
    // One sample as input, made once: a timed call is exactly one inference plus reading it.
    needModel();
    if (req.shapes) {
      const feeds = namedInputs(req, 0, 1);
      return {x: {dispose: () => disposeAll(feeds)}, invoke: () => predictSync(feeds), invokeAsync: () => predict(feeds)};
    }
    const per = req.shape.slice(1).reduce((a, b) => a * b, 1);
    const rows = info.input.shape[0] > 0 ? info.input.shape[0] : 1;
    const data = new Float32Array(rows * per);
    for (let r = 0; r < rows; r++) data.set(req.data.subarray(0, per), r * per);
    const x = tf.tensor(data, [rows, ...req.shape.slice(1)], inputDtype());
    return {x, invoke: () => predictSync(x), invokeAsync: () => predict(x)};
  }

  async function time(req) {
    const {x, invoke: invokeSync, invokeAsync} = bind(req);
    try {
      await invokeAsync();  // settles asyncMode
      // Sync graphs are timed without an await per call; control-flow graphs need one.
      const call = asyncMode ? invokeAsync : invokeSync;
      for (let i = 0; i < (req.warmup ?? 10); i++) if (asyncMode) await call(); else call();
      const runs = req.runs ?? 100;
      const minMs = (req.min_time_s ?? 0.5) * 1000;
      const maxMs = (req.max_time_s ?? 30) * 1000;
      const samples = [];
      const start = host.now();
      for (;;) {
        const a = host.now();
        const r = call();
        if (asyncMode) await r;
        const b = host.now();
        samples.push(b - a);
        if (samples.length >= runs && b - start >= minMs) break;
        if (samples.length >= 100000 || (b - start >= maxMs && samples.length >= 1)) break;
      }
      return {samples_ms: samples, async: asyncMode};
    } finally {
      x.dispose();
    }
  }

  async function first(req) {
    // The first inference after load: kernels compile, buffers are allocated.
    const {x, invokeAsync} = bind(req);
    try {
      const t0 = host.now();
      await invokeAsync();
      return {first_ms: host.now() - t0};
    } finally {
      x.dispose();
    }
  }

  return {load, run, time, first, bind};
}
