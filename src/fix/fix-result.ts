import { BeforeAfter } from "./before-after";

/** Anything a result owns that holds tensors. */
interface Owned {
  dispose(): void;
}

/**
 * What every fix returns beside its own findings: the `step` that names the
 * kind of result (`qd.show` draws it by that name), a `diagnosis` in words, and
 * `dispose()`, which frees whatever new graph or simulation it holds. Results
 * are disposed one way everywhere: `result.dispose()`.
 */
export interface FixResult {
  step: string;
  diagnosis: string;
  /** Frees the new graph and simulation the result holds (the caller's inputs are left alone). Idempotent. */
  dispose(): void;
}

/**
 * `result` with a `dispose()` that frees `owned` once, in order (a simulation
 * before the graph it runs over). Not enumerable: the result still serializes
 * and compares as plain data.
 */
export function disposable<T extends object>(result: T, ...owned: (Owned | undefined)[]): T & { dispose(): void } {
  let done = false;
  Object.defineProperty(result, "dispose", {
    enumerable: false,
    value: () => {
      if (done) return;
      done = true;
      for (const o of owned) o?.dispose();
    },
  });
  return result as T & { dispose(): void };
}

/** " Score: before → after." for a diagnosis, when the fix was scored. */
export function scoresSentence(scores: BeforeAfter | undefined): string {
  if (!scores) return "";
  const f = (v: number) => (scores.metric.metric === "accuracy" || scores.metric.metric === "agreement" ? `${(100 * v).toFixed(2)} %` : v.toFixed(4));
  return ` ${scores.metric.label}: ${f(scores.before)} → ${f(scores.after)} (${scores.change >= 0 ? "+" : ""}${scores.metric.metric === "accuracy" || scores.metric.metric === "agreement" ? `${(100 * scores.change).toFixed(2)} points` : scores.change.toFixed(4)}).`;
}

/** "3 layers" / "1 layer". */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
