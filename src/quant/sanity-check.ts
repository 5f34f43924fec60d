import { Dataset, requireData } from "../data/types";
import { OutputComparison } from "../eval/output-comparison";
import { compareWithFp32 } from "../eval/side-by-side";
import { ProgressFn } from "../progress";
import { QuantSim } from "./quantsim";

export interface SanityVariant extends OutputComparison {
  variant: "32-bit" | "bypassed";
  pass: boolean;
}

export interface SanityCheckResult {
  step: "fp32-sanity-check";
  /** Largest relative output error allowed (relative to the FP32 outputs' scale). */
  tolerance: number;
  checks: SanityVariant[];
  pass: boolean;
  /** Plain-language reading of the result. */
  diagnosis: string;
}

/**
 * The guidebook's first debugging step: the simulation must reproduce the FP32
 * model when quantization cannot matter — every quantizer at 32 bits (rounding
 * noise ~1e-9 of the range) and every quantizer bypassed (exactly FP32). If
 * either fails, the simulation pipeline itself is broken, not the quantization.
 * Ranges come from `sim`'s calibration; run it on the data it was calibrated on,
 * since 32-bit quantizers still clip values outside their calibrated range.
 */
export interface SanityCheckOptions {
  /** The data `sim` was calibrated on (32-bit quantizers still clip outside their ranges). */
  data: Dataset;
  /** Largest relative output error at 32 bits (default 1e-4). */
  tolerance?: number;
  onProgress?: ProgressFn;
}

export async function fp32SanityCheck(sim: QuantSim, options: SanityCheckOptions): Promise<SanityCheckResult> {
  const data = requireData("fp32SanityCheck", options);
  const tolerance = options.tolerance ?? 1e-4;
  const at32 = sim.with({ "**": { bitwidth: 32 } });
  const bypassed = sim.with({ "**": { enabled: false } });
  try {
    const result = await compareWithFp32(sim.graph, { data, variants: { "32-bit": at32, bypassed }, onProgress: options.onProgress, task: "FP32 sanity check" });
    const checks = (["32-bit", "bypassed"] as const).map((variant) => {
      const c = result.variants[variant];
      const pass = c.maxRelError <= (variant === "bypassed" ? 0 : tolerance) && (c.top1Agreement === null || c.top1Agreement === 1);
      return { variant, ...c, pass };
    });
    const pass = checks.every((c) => c.pass);
    const [c32, off] = checks;
    const diagnosis = pass
      ? `The simulation is sound: with every quantizer at 32 bits the outputs stay within ${c32.maxRelError.toExponential(1)} of FP32 (relative), and with every quantizer bypassed they are identical. Any accuracy drop you see later comes from quantization itself.`
      : !off.pass
        ? `The simulation does not reproduce FP32 even with every quantizer bypassed (largest relative error ${off.maxRelError.toExponential(1)}): the model graph or the runner differs from the FP32 model. Fix this before any quantization analysis.`
        : `With every quantizer at 32 bits the outputs differ from FP32 by up to ${c32.maxRelError.toExponential(1)} (relative; tolerance ${tolerance}). The quantizers themselves distort values even at 32 bits: check the calibrated ranges (values outside them are clipped) on this data.`;
    return { step: "fp32-sanity-check", tolerance, checks, pass, diagnosis };
  } finally {
    at32.dispose();
    bypassed.dispose();
  }
}
