import { pino, type Logger, type DestinationStream } from 'pino';
import { SUGGESTED_EXTRA_REDACT_PATHS } from './security/redaction.ts';

export type { Logger } from 'pino';

/**
 * Paths pino removes from every log line. Tokens, JWTs, patient identity and prefetch
 * contents must never reach the log; request bodies are never logged at all.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'access_token',
  '*.access_token',
  'fhirAuthorization',
  '*.fhirAuthorization',
  'prefetch',
  '*.prefetch',
  'token',
  '*.token',
  'jwt',
  '*.jwt',
  'patientId',
  '*.patientId',
  ...SUGGESTED_EXTRA_REDACT_PATHS,
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'gene-therapy-crd' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
