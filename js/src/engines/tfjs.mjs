// The TF.js engine: one graph model (model.json + weight shards) on one TF.js backend.
//
//   makeTFJSEngine(tf, {loadArtifacts, wasm})
//     tf             the TF.js module (Node import, or the page's global from tf.min.js)
//     loadArtifacts  async () -> ModelArtifacts (topology + weights) from wherever they live
//     wasm           the wasm backend module where it is not `tf.wasm`
// load {backend: "wasm"|"webgl"|"cpu", threads} -> backend, tfjs_version, threads, weight dtypes, ops.

export function makeTFJSEngine(tf, host) {
  let model = null;
  let outputNames = null;
  let asyncMode = false;  // graphs with control flow (a recurrent layer's while loop) need executeAsync()

  async function setBackend(backend, threads) {
    const wasm = host.wasm || tf.wasm;
    if (backend === "wasm" && threads && wasm && wasm.setThreadsCount) wasm.setThreadsCount(threads);
    let ok = false;
    try {
      ok = await tf.setBackend(backend);
    } catch (e) {
      throw new Error(`the ${backend} backend could not start: ${e.message || e}`);
    }
    if (!ok || tf.getBackend() !== backend) throw new Error(`the ${backend} backend could not start here`);
    await tf.ready();
  }

  async function load(req) {
    const backend = req.backend || "wasm";
    await setBackend(backend, req.threads);
    const artifacts = await host.loadArtifacts();
    model = await tf.loadGraphModel({load: async () => artifacts});
    // Bound by name: a converted SavedModel's signature names its inputs and outputs (inputNodes /
    // outputNodes), whatever its tensors are called (Identity_2, ...).
    const inNames = model.inputNodes || [], outNames = model.outputNodes || [];
    const inputs = model.inputs.map((t, i) => ({name: inNames[i] || t.name, shape: t.shape, dtype: t.dtype}));
    const outputs = model.outputs.map((t, i) => ({name: outNames[i] || t.name, shape: t.shape, dtype: t.dtype}));
    outputNames = outputs.map((o) => o.name);
    const weightDtypes = {};
    for (const w of artifacts.weightSpecs || []) {
      const dt = w.quantization ? `${w.quantization.dtype} (${w.dtype} at run time)` : w.dtype;
      weightDtypes[dt] = (weightDtypes[dt] || 0) + 1;
    }
    const ops = {};
    for (const node of (artifacts.modelTopology && artifacts.modelTopology.node) || []) ops[node.op] = (ops[node.op] || 0) + 1;
    let threads = null;
    const wasm = host.wasm || tf.wasm;
    if (backend === "wasm" && wasm && wasm.getThreadsCount) {
      try { threads = wasm.getThreadsCount(); } catch (e) { threads = null; }
    }
    return {engine: "tfjs", backend: tf.getBackend(), tfjs_version: tf.version.tfjs, threads, inputs, outputs,
            batch: 64, weight_dtypes: weightDtypes, ops};
  }

  function feeds(blocks) {
    const specs = model.inputs;
    const tensors = blocks.map(({data, shape}, k) => tf.tensor(data, shape, specs[k].dtype === "int32" ? "int32" : "float32"));
    if (tensors.length === 1) return tensors[0];
    const named = {};
    const inNames = model.inputNodes || [];
    tensors.forEach((t, k) => { named[inNames[k] || specs[k].name] = t; });
    return named;
  }

  function dispose(x) {
    if (x instanceof tf.Tensor) x.dispose(); else Object.values(x).forEach((t) => t.dispose());
  }

  function read(y) {
    // dataSync() waits for the result on every backend, so a timed call covers the whole inference.
    const ys = Array.isArray(y) ? y : [y];
    return ys.map((t) => {
      const out = t.dataSync();
      const shape = t.shape;
      t.dispose();
      return {out, shape};
    });
  }

  function execute(x) {
    // several inputs or outputs: every output asked for by name, in the signature's order
    return x instanceof tf.Tensor && outputNames.length === 1 ? model.execute(x) : model.execute(x, outputNames);
  }

  async function inferAsync(x) {
    try {
      return read(await model.executeAsync(x, outputNames));
    } catch (e) {
      throw new Error(`TF.js cannot run this graph's control flow (a recurrent layer's while loop): ${e.message || e}`);
    }
  }

  function infer(x) {
    if (!asyncMode) {
      try {
        return read(execute(x));
      } catch (e) {
        if (!/executeAsync/.test(String(e && e.message))) throw e;
        asyncMode = true;
      }
    }
    return inferAsync(x);
  }

  // The graph executor's own cost per node, measured on req.chains (two graph topologies of 40 and 80
  // Relu nodes on a [1, 16] input, no weights): each chain timed plainly (the best of 3 interleaved means
  // of 200 calls) and profiled 21 times (the median); (80-node time - 40-node time) less what their kernels took, per node
  // (edgekit.profiling.tfjs_ops.executor_cost_us).
  async function chainCosts(chains) {
    const loaded = {};
    for (const n of ["40", "80"]) {
      loaded[n] = await tf.loadGraphModel({load: async () => ({modelTopology: chains[n].modelTopology, format: "graph-model",
        weightSpecs: [], weightData: new ArrayBuffer(0), signature: chains[n].signature})});
    }
    const x = tf.ones([1, 16]);
    // a graph that needs executeAsync (NMS, control flow) is walked by the async executor, which costs
    // more per node: the chains are run the way the model runs
    const call = asyncMode
      ? async (m) => { const y = await m.executeAsync(x); y.dataSync(); y.dispose(); }
      : (m) => { const y = m.execute(x); y.dataSync(); y.dispose(); };
    const plain = {40: [], 80: []}, kernels = {};
    try {
      for (const n of ["40", "80"]) for (let i = 0; i < 20; i++) await call(loaded[n]);
      for (let r = 0; r < 3; r++) {
        for (const n of ["40", "80"]) {
          const t0 = performance.now();
          for (let i = 0; i < 200; i++) await call(loaded[n]);
          plain[n].push((performance.now() - t0) / 200);
        }
      }
      for (const n of ["40", "80"]) {  // the median of 21 profiled runs: one run's kernel times are noisy
        const sums = [];
        for (let r = 0; r < 21; r++) {
          const info = await tf.profile(async () => { await call(loaded[n]); });
          sums.push(info.kernels.filter((k) => !k.name.endsWith("__op"))
            .reduce((sum, k) => sum + (typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0), 0));
        }
        kernels[n] = sums.sort((a, b) => a - b)[10];
      }
    } finally {
      x.dispose();
      for (const m of Object.values(loaded)) m.dispose();
    }
    return {plain_ms: {40: Math.min(...plain[40]), 80: Math.min(...plain[80])}, kernel_ms: kernels};
  }

  // Per-kernel times of `runs` inferences (tf.profile): the kernels of each run in the order they ran,
  // with the wrapper entries (`fusedConv2d__op`, which hold the kernel inside them) left out.
  async function profile(x, runs, consoleCatch, req = {}) {
    if (req.chains) {  // one run first: it finds out whether the model needs executeAsync (asyncMode)
      try { await infer(x); } catch (e) { /* profiled below, up to where it fails */ }
    }
    const chains = req.chains ? await chainCosts(req.chains) : null;
    const kernels = [];
    const times = [];
    for (let r = 0; r < runs; r++) {
      let info;
      try {
        info = await tf.profile(async () => { await infer(x); });
      } catch (e) {  // profiled up to the failure: the kernels that ran before it, and why it stopped
        const state = tf.engine().state;
        state.profiling = false;
        const ran = (state.activeProfile.kernels || []).filter((k) => !k.name.endsWith("__op"));
        const ms = [];
        for (const k of ran) { const t = await k.kernelTimeMs; ms.push(typeof t === "number" ? t : 0); }
        return {kernels: ran.map((k) => ({name: k.name, outputShapes: k.outputShapes})), times_ms: [ms],
                backend: tf.getBackend(), failed: String((e && e.message) || e), chains};
      }
      const ran = info.kernels.filter((k) => !k.name.endsWith("__op"));
      if (r === 0) for (const k of ran) kernels.push({name: k.name, outputShapes: k.outputShapes});
      times.push(ran.map((k) => (typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0)));
    }
    return {kernels, times_ms: times, backend: tf.getBackend(), chains};
  }

  return {load, feeds, infer, dispose, profile};
}
