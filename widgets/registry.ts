import type { View } from "./spec";

/**
 * Which view draws which result. Each view file registers the result kinds it
 * draws: by the result's `step`, or, for results that do not carry one yet,
 * by a test of its shape. `viewFor` is the one place `show` asks.
 */
interface Entry {
  name: string;
  steps: readonly string[];
  matches?: (x: Record<string, unknown>) => boolean;
  draw: (x: never) => View;
}

const entries: Entry[] = [];

export function registerView<T>(name: string, how: { steps?: readonly string[]; matches?: (x: Record<string, unknown>) => boolean }, draw: (x: T) => View): void {
  entries.push({ name, steps: how.steps ?? [], matches: how.matches, draw: draw as (x: never) => View });
}

/** The view registered for a result: its `step` first, then the shape tests in registration order. */
export function viewFor(x: Record<string, unknown>): View | undefined {
  const step = typeof x.step === "string" ? x.step : undefined;
  const entry = (step !== undefined ? entries.find((e) => e.steps.includes(step)) : undefined) ?? entries.find((e) => e.matches?.(x));
  return entry ? entry.draw(x as never) : undefined;
}

/** The registered views and what they draw, for error messages and docs. */
export function registeredViews(): { name: string; steps: readonly string[]; byShape: boolean }[] {
  return entries.map((e) => ({ name: e.name, steps: e.steps, byShape: e.matches !== undefined }));
}
