import { type ComponentType, lazy } from "react";

/**
 * A page loaded when first opened, so the first visit's JavaScript stays within budget.
 * The router's pending component (router.tsx) shows while it loads, inside the frame, so
 * the top bar and navigation stay up.
 */
export function lazyPage<P extends object>(load: () => Promise<ComponentType<P>>) {
  return lazy(() => load().then((component) => ({ default: component })));
}
