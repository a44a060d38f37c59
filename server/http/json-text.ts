import contentType from 'content-type';
import express, { type RequestHandler } from 'express';
import { HttpError } from './operation-outcome.ts';

/**
 * The hook route reads its body as text and parses it where the answer is computed (on the
 * service's thread, or on a hook thread), with express.json()'s rules, so that both places
 * answer malformed input exactly as the JSON parser of the other routes does.
 */

export const JSON_TYPES = ['application/json', 'application/fhir+json', 'application/*+json'];

/** RFC 8259 §8.1, as express.json() enforces it: a JSON body is in a Unicode encoding. */
function charsetIsUnicode(header: string | undefined): boolean {
  if (!header) return true;
  try {
    const charset = contentType.parse(header).parameters.charset?.toLowerCase();
    return charset === undefined || charset.startsWith('utf-');
  } catch {
    // Unparseable content types never match JSON_TYPES, so such a body is not read at all.
    return true;
  }
}

/**
 * Reads a JSON body into `req.body` as a string (or leaves it undefined, as express.json() does
 * for other content types and empty bodies). Size, compression and charset failures are the same
 * http errors express.json() raises, for bodyErrorHandler.
 */
export function jsonTextBody(limitBytes: number): RequestHandler {
  const readText = express.text({ limit: limitBytes, type: JSON_TYPES, defaultCharset: 'utf-8' });
  return (req, res, next) => {
    if (req.is(JSON_TYPES) && !charsetIsUnicode(req.headers['content-type'])) {
      const charset = contentType.parse(req.headers['content-type'] ?? '').parameters.charset ?? '';
      next(Object.assign(new Error(`unsupported charset "${charset.toUpperCase()}"`), { status: 415, statusCode: 415, expose: true, type: 'charset.unsupported', charset }));
      return;
    }
    readText(req, res, next);
  };
}

const notJson = (): HttpError => new HttpError(400, { code: 'structure', diagnostics: 'Request body is not valid JSON' });

/** A JSON value, as express.json() (strict) would have parsed it: an object or an array, `{}` for no text. */
export function parseJsonText(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  if (text.length === 0) return {};
  const first = text[0] === '{' || text[0] === '[' ? text[0] : /^[\x20\x09\x0a\x0d]*(.|$)/s.exec(text)?.[1];
  if (first !== '{' && first !== '[') throw notJson();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw notJson();
  }
}
