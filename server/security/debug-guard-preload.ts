// Import first in the entry point (before anything that loads fhir-kit-client); log
// `debugGuard.stripped` once the logger exists.
import { assertNoTokenLeakingDebug } from './debug-guard.ts';

export const debugGuard = assertNoTokenLeakingDebug(process.env);
