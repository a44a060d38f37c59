import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, base64url, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { createLogger, type Logger } from '../../server/logger.ts';

export const BASE_URL = 'https://cds.example.org';

export interface TestKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(alg: 'ES384' | 'RS384' | 'ES256' | 'RS256' | 'PS384', kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicJwk };
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export interface TokenOptions {
  iss?: string;
  aud?: string | string[];
  /** Claims to set (undefined values are removed, to test missing claims). */
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
}

/** A CDS Hooks client JWT the way Inferno builds one: iss, aud, exp = iat + 5 min, iat, jti. */
export async function signToken(key: TestKey, opts: TokenOptions = {}): Promise<string> {
  const iat = nowSeconds();
  const payload: Record<string, unknown> = {
    iss: opts.iss ?? 'https://ehr.example.org',
    aud: opts.aud ?? `${BASE_URL}/cds-services/crd-order-sign`,
    iat,
    exp: iat + 300,
    jti: randomBytes(32).toString('hex'),
    ...opts.claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  const header: Record<string, unknown> = { alg: key.alg, typ: 'JWT', kid: key.kid, ...opts.header };
  for (const [k, v] of Object.entries(header)) if (v === undefined) delete header[k];
  return new SignJWT(payload as JWTPayload).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
}

/** Hand-assembles a token (for alg "none" and other shapes jose refuses to produce). */
export function rawToken(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  const enc = (o: unknown): string => base64url.encode(JSON.stringify(o));
  return `${enc(header)}.${enc(payload)}.${signature}`;
}

export interface CapturedLog {
  logger: Logger;
  lines: string[];
  entries: () => Array<Record<string, unknown>>;
}

export function captureLogger(level = 'debug'): CapturedLog {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (s: string) => void lines.push(s) });
  return {
    logger,
    lines,
    entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface RecordingServer {
  url: string;
  origin: string;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  close: () => Promise<void>;
}

/** A local HTTP server on 127.0.0.1 that records every request it receives. */
export async function startRecordingServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  },
): Promise<RecordingServer> {
  const state: RecordingServer = {
    url: '',
    origin: '',
    requests: [],
    handler,
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    state.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => state.handler(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  state.origin = `http://127.0.0.1:${port}`;
  state.url = `${state.origin}/`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
