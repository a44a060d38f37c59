import express from 'express';

/**
 * The benchmark's floor: a bare Express 5 app whose POST route parses the same JSON body as the
 * service (same parser, same limit) and answers a small JSON. No validation, no work.
 */
const port = Number(process.env.PORT ?? 3001);
const host = process.env.HOST ?? '127.0.0.1';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.get('/health', (_req, res) => {
  res.json({ status: 'ok' });
});
app.post('/cds-services/:id', express.json({ limit: '2mb' }), (req, res) => {
  const body: unknown = req.body;
  const keys = body !== null && typeof body === 'object' ? Object.keys(body).length : 0;
  res.json({ cards: [], keys });
});

const server = app.listen(port, host, (error?: Error) => {
  if (error) {
    process.stderr.write(`bare server could not listen: ${error.message}\n`);
    process.exit(1);
  }
});
server.keepAliveTimeout = 65_000;
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
