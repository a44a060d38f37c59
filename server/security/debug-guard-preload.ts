// Import first in the entry point (before anything that loads fhir-kit-client); log
// `debugGuard.stripped` once the logger exists.
import { assertNoTokenLeakingDebug } from './debug-guard.ts';

function guard(): ReturnType<typeof assertNoTokenLeakingDebug> {
  try {
    return assertNoTokenLeakingDebug(process.env);
  } catch (error) {
    // Runs at import time, before main()'s own error handling: fail the same way, without a stack trace.
    process.stderr.write(`startup failed: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

export const debugGuard = guard();
