/**
 * A bench's cleanup, run once: at the end, on error, or on ^C / SIGTERM (a second signal
 * exits at once). `cleanup` is what the bench calls itself at the end; `interrupted` says
 * whether a signal came, so its loops can stop early.
 */
export function cleanupOnExit(cleanup: () => Promise<void>): { cleanup: () => Promise<void>; readonly interrupted: boolean } {
  let cleaning: Promise<void> | undefined;
  const cleanupOnce = () => (cleaning ??= cleanup());
  let interrupted = false;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      console.error(`\n${sig}: cleaning up…`);
      void cleanupOnce().finally(() => process.exit(130));
    });
  }
  return {
    cleanup: cleanupOnce,
    get interrupted() {
      return interrupted;
    },
  };
}
