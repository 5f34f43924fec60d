import * as tf from "@tensorflow/tfjs";

/**
 * The pieces of AdaRound's objective (Nagel et al., "Up or Down? Adaptive
 * Rounding for Post-Training Quantization", ICML 2020), with AIMET's constants
 * and formulas (aimet_torch adaround_loss.py / adaround_tensor_quantizer.py):
 *
 * - soft rounding h(V) = clip(sigmoid(V)·(ζ − γ) + γ, 0, 1), ζ = 1.1, γ = −0.1
 *   (the rectified sigmoid: it reaches 0 and 1 exactly, so V can settle);
 * - V starts where h(V) = frac(W/s), so the first soft weights are the FP32 weights;
 * - rounding regularizer λ·Σ(1 − |2h(V) − 1|^β), off during the warm start, with β
 *   annealed by a cosine from betaRange[0] to betaRange[1] after it;
 * - reconstruction ‖f(W̃x) − f(Wx)‖²: squared error summed over the channel (last)
 *   axis and averaged over every other axis (examples, positions).
 */
export const ADAROUND_ZETA = 1.1;
export const ADAROUND_GAMMA = -0.1;

/** h(V) on tensors. */
export function rectifiedSigmoid(v: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.clipByValue(tf.add(tf.mul(tf.sigmoid(v), ADAROUND_ZETA - ADAROUND_GAMMA), ADAROUND_GAMMA), 0, 1));
}

/** h(V) for one value: the reference the tensor version is tested against. */
export function rectifiedSigmoidValue(v: number): number {
  return Math.min(1, Math.max(0, (ADAROUND_ZETA - ADAROUND_GAMMA) / (1 + Math.exp(-v)) + ADAROUND_GAMMA));
}

/** The V with h(V) = frac, for frac in [0, 1): AIMET's −log((ζ − γ)/(frac − γ) − 1). */
export function initialV(frac: number): number {
  return -Math.log((ADAROUND_ZETA - ADAROUND_GAMMA) / (frac - ADAROUND_GAMMA) - 1);
}

/**
 * β at iteration `iteration` of `iterations`: AIMET's cosine decay from
 * betaRange[0] (right after the warm start) to betaRange[1] (at the end).
 */
export function annealedBeta(iteration: number, iterations: number, betaRange: readonly [number, number], warmStart: number): number {
  const [start, end] = betaRange;
  const warmEnd = warmStart * iterations;
  const relative = (iteration - warmEnd) / (iterations - warmEnd);
  return end + 0.5 * (start - end) * (1 + Math.cos(relative * Math.PI));
}

/** Whether the rounding regularizer is off at this iteration (AIMET: iteration < iterations · warmStart). */
export function inWarmStart(iteration: number, iterations: number, warmStart: number): boolean {
  return iteration < iterations * warmStart;
}

/** λ·Σ(1 − |2h − 1|^β) over every element of h (a scalar tensor). */
export function roundingLoss(h: tf.Tensor, regularization: number, beta: number): tf.Scalar {
  return tf.tidy(() => tf.mul(regularization, tf.sum(tf.sub(1, tf.pow(tf.abs(tf.sub(tf.mul(h, 2), 1)), beta)))) as tf.Scalar);
}

/** Squared error summed over the last axis, averaged over the others (AIMET's squared Frobenius norm over channels). */
export function reconstructionLoss(output: tf.Tensor, target: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sum(tf.squaredDifference(output, target), -1)) as tf.Scalar);
}
