import { IDENTICAL_DB } from "./metric";

/**
 * Scores in words, in the metric's own units, for diagnoses and terminal
 * output: "42.1 dB", "97.50 %", "MSE 1.2e-4" (the score is −MSE), "0.99912".
 */
export function scoreText(metric: { metric: string }, v: number): string {
  switch (metric.metric) {
    case "sqnr":
    case "psnr":
      // Outputs identical to FP32's have no error to measure (the metric reports IDENTICAL_DB for them).
      return v >= IDENTICAL_DB ? "identical to FP32" : `${v.toFixed(1)} dB`;
    case "accuracy":
    case "agreement":
      return `${(100 * v).toFixed(2)} %`;
    case "mse":
      return `MSE ${significant(-v)}`;
    case "cosine":
      return v.toFixed(5);
    default:
      return Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(4);
  }
}

/** A change of the score (after − before), signed: "+1.3 dB", "−0.40 pt", "MSE −12 %". */
export function changeText(metric: { metric: string }, change: number): string {
  const sign = change >= 0 ? "+" : "−";
  switch (metric.metric) {
    case "sqnr":
    case "psnr":
      return `${sign}${Math.abs(change).toFixed(1)} dB`;
    case "accuracy":
    case "agreement":
      return `${sign}${Math.abs(100 * change).toFixed(2)} pt`;
    default:
      return `${sign}${significant(Math.abs(change))}`;
  }
}

function significant(v: number): string {
  if (v === 0) return "0";
  const s = Number(v.toPrecision(3));
  return Math.abs(s) >= 1e5 || Math.abs(s) < 1e-3 ? s.toExponential(2).replace(/\.?0+e/, "e") : String(s);
}

/** The target of an absolute score in words: "PSNR ≥ 40.0 dB", "MSE ≤ 1e-4", "score ≥ 0.9". */
export function atLeastText(metric: { metric: string }, target: number): string {
  const name = { sqnr: "SQNR", psnr: "PSNR", accuracy: "accuracy", agreement: "agreement", cosine: "cosine similarity", mse: "MSE" }[metric.metric] ?? "score";
  if (metric.metric === "mse") return `MSE ≤ ${significant(-target)}`;
  return `${name} ≥ ${scoreText(metric, target)}`;
}
