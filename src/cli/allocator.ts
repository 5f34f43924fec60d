/**
 * glibc's malloc returns blocks above its mmap threshold (128 KB, rising to at
 * most 32 MB as such blocks are freed) to the system when they are freed, and
 * maps fresh pages for the next one. Every large buffer of a forward pass (ONNX
 * Runtime's outputs, the values statistics read) then page-faults again: about
 * 250 MB/s on these virtual machines, more than the compute of MobileNetV2's
 * early layers. With the threshold at its maximum and no trimming, freed
 * blocks stay in the heap and are reused. glibc reads these settings only when
 * a process starts, so the CLI restarts itself once with them.
 */
export const HEAP_SETTINGS: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(32 * 2 ** 20),
  MALLOC_TRIM_THRESHOLD_: String(2 ** 32),
};

function glibc(): boolean {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return process.platform === "linux" && typeof header?.glibcVersionRuntime === "string";
}

/** The environment to restart the CLI with, or undefined when it already runs with it (or cannot use it). */
export function allocatorRestartEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv | undefined {
  if (env.QDEBUG_HEAP === "system" || Object.keys(HEAP_SETTINGS).some((k) => env[k] !== undefined) || !glibc()) return undefined;
  return { ...env, ...HEAP_SETTINGS };
}

/** One line for `qdebug info`: how this process's allocator treats large blocks. */
export function allocatorDescription(env: NodeJS.ProcessEnv = process.env): string {
  if (!glibc()) return "system allocator";
  const kept = Object.entries(HEAP_SETTINGS).every(([k, v]) => env[k] === v);
  if (kept) return "glibc, freed blocks kept in the heap (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_)";
  return Object.keys(HEAP_SETTINGS).some((k) => env[k] !== undefined) ? "glibc, with the MALLOC_* settings given" : "glibc defaults (large blocks mapped afresh)";
}
