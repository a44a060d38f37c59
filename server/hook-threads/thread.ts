// A hook thread: answers hook calls with the same pipeline as the service's thread, so that one
// process uses more than one core. It parses the body, evaluates, renders and serialises the
// response, and prepares the decision for the log; the service's thread keeps HTTP and the store.
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { loadPolicyRegistry } from '../../policies/registry.ts';
import { HttpError } from '../http/operation-outcome.ts';
import { createLogger } from '../logger.ts';
import { answerHookText, configuredPipeline, type BodyLimits, type PipelineDeps } from '../pipeline.ts';
import { ServiceCatalog } from '../protocol/services.ts';
import { prepareDecision } from '../store/repository.ts';
import { normalizeRecord } from '../store/validate.ts';
import { summariseError, type HookJob, type HookReply, type HookThreadData, type ThreadStatus } from './messages.ts';

const port = parentPort;
if (!port) throw new Error('hook thread must run in a worker thread');

async function answer(pipeline: PipelineDeps, limits: BodyLimits, job: HookJob): Promise<HookReply> {
  try {
    const result = await answerHookText(pipeline, limits, job.serviceId, job.text, job.caller);
    const body = JSON.stringify(result.response);
    if (!job.prepareDecision) return { id: job.id, kind: 'answer', body };
    try {
      return { id: job.id, kind: 'answer', body, decision: prepareDecision(normalizeRecord({ ...result.record, responseJson: body })) };
    } catch (err) {
      return { id: job.id, kind: 'answer', body, unrecordable: summariseError(err) };
    }
  } catch (err) {
    if (err instanceof HttpError) return { id: job.id, kind: 'refused', status: err.status, outcome: err.outcome };
    return { id: job.id, kind: 'failed', error: summariseError(err) };
  }
}

try {
  const { config, root } = workerData as HookThreadData;
  const { pipeline, limits } = configuredPipeline(config, {
    registry: loadPolicyRegistry(config.policyDir),
    services: new ServiceCatalog(path.join(root, 'cds-services.json')),
    // Straight to stdout's file descriptor, as the service's thread logs, with the same redaction.
    logger: createLogger(config.logLevel),
  });
  port.on('message', (job: HookJob) => {
    void answer(pipeline, limits, job).then((reply) => port.postMessage(reply));
  });
  port.postMessage({ kind: 'ready' } satisfies ThreadStatus);
} catch (err) {
  port.postMessage({ kind: 'startup-failed', error: summariseError(err) } satisfies ThreadStatus);
}
