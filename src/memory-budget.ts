import * as os from "os";

/**
 * The memory budget: the peak resident memory the process should stay within.
 * QDEBUG_MEMORY (bytes, or with a unit: "1.5GB", "800MB"), else a quarter of
 * free memory between 512 MB and 2 GB.
 */
export function memoryBudget(): number {
  const v = process.env.QDEBUG_MEMORY;
  if (v !== undefined && v !== "") {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(v);
    if (!m) throw new Error(`QDEBUG_MEMORY must be a size such as 1.5GB or 800MB, got ${JSON.stringify(v)}`);
    const unit = { b: 1, kb: 2 ** 10, mb: 2 ** 20, gb: 2 ** 30 }[(m[2] ?? "b").toLowerCase() as "b"];
    return Number(m[1]) * unit;
  }
  return Math.min(2 * 2 ** 30, Math.max(512 * 2 ** 20, os.freemem() / 4));
}

let heldBeforeEngine: number | undefined;

/**
 * What the engine may use for its activations, sessions and workers: the
 * budget less what the process held when the engine first asked (the
 * runtimes, the model, the data), and at least a quarter of the budget. The
 * engine's own memory from one step is freed or reused by the next, so it is
 * not subtracted again.
 */
export function engineMemory(): number {
  heldBeforeEngine ??= process.memoryUsage().rss;
  const budget = memoryBudget();
  return Math.max(budget / 4, budget - heldBeforeEngine);
}

/** Whether an error means that memory ran out: tfjs's wasm heap, a typed array, or ONNX Runtime's allocator. */
export function isOutOfMemory(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /memory access out of bounds|Aborted\(OOM\)|Cannot enlarge memory|out of memory|Array buffer allocation failed|Invalid typed array length|bad_alloc|Failed to allocate/i.test(message);
}

/**
 * The error a command shows when a step runs out of memory: which step, at
 * what batch size, and the two knobs that bound memory. Other errors are
 * returned as they are.
 */
export function explainOutOfMemory(err: unknown, step: string, batchSize?: number): unknown {
  if (!isOutOfMemory(err)) return err;
  const original = err instanceof Error ? err.message : String(err);
  const budget = `${(memoryBudget() / 2 ** 30).toFixed(2)} GB`;
  const batch = batchSize !== undefined ? ` at batch size ${batchSize}` : "";
  const lower = batchSize !== undefined && batchSize > 1 ? `lower the batch size (--batch-size ${Math.max(1, Math.floor(batchSize / 2))})` : "lower the batch size (--batch-size)";
  return new Error(`out of memory in step "${step}"${batch} (${original.split("\n")[0]}): ${lower}, or the engine's memory budget (QDEBUG_MEMORY, now ${budget})`, { cause: err });
}
