import * as os from "os";
import type * as Tf from "@tensorflow/tfjs";
import type * as Ort from "onnxruntime-node";

/**
 * ONNX Runtime, loaded on demand: `onnxruntime-node` is an optional
 * dependency (its npm package bundles the Linux/macOS/Windows CPU library), so
 * qdebug works without it, on tfjs alone.
 */
let loaded: { ort?: typeof Ort; failure?: string } | undefined;

export function loadOrt(): { ort?: typeof Ort; failure?: string } {
  if (!loaded) {
    try {
      loaded = { ort: require("onnxruntime-node") as typeof Ort };
    } catch (err) {
      loaded = { failure: (err as Error).message.split("\n")[0] };
    }
  }
  return loaded;
}

export function requireOrt(): typeof Ort {
  const { ort, failure } = loadOrt();
  if (!ort) throw new Error(`the ONNX Runtime engine needs the onnxruntime-node package, which does not load here (${failure}); install it, or use the tfjs engine (QDEBUG_ENGINE=tfjs)`);
  return ort;
}

/** Intra-op threads: QDEBUG_THREADS, else one per core. */
export function engineThreads(): number {
  return perCoreSetting("QDEBUG_THREADS", 1);
}

/** A count set by environment variable `name` (a whole number >= `min`), else one per core. */
export function perCoreSetting(name: string, min: number): number {
  const v = process.env[name];
  if (v !== undefined && v !== "") {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  }
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

/**
 * A session over a lowered model. ORT's QDQ fusion is off, so Quantize/
 * DequantizeLinear pairs stay a simulation in float rather than being replaced
 * by integer kernels with other rounding.
 */
export async function createSession(bytes: Uint8Array, options: { threads?: number } = {}): Promise<Ort.InferenceSession> {
  const ort = requireOrt();
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: options.threads ?? engineThreads(),
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    // Memory patterns double the cost of the first runs, and sessions here are many and short-lived.
    enableMemPattern: false,
    // Without its arena, ORT allocates every activation afresh on each run: ten times slower here.
    enableCpuMemArena: true,
    // Idle sessions must not spin: a sweep holds many, and two cores.
    extra: { session: { disable_quant_qdq: "1", "intra_op.allow_spinning": "0" } },
  });
}


/** A model input as an ORT tensor: int32 ids stay int32, everything else is float32 (read once from tfjs). */
export function toOrtTensor(t: Tf.Tensor): Ort.Tensor {
  const ort = requireOrt();
  return t.dtype === "int32" ? new ort.Tensor("int32", t.dataSync() as Int32Array, t.shape) : new ort.Tensor("float32", t.dataSync() as Float32Array, t.shape);
}
