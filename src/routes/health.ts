import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { ReadinessSchema, type Readiness } from '../../schemas/operations.js'

/** A check that does not answer in time counts as failed: a probe must not hang with it. */
const CHECK_TIMEOUT_MS = 5000

type CheckResult = { ok: true } | { ok: false, message: string }

async function probe (check: () => Promise<void>): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)) }, CHECK_TIMEOUT_MS)
  })
  try {
    await Promise.race([check(), timeout])
    return { ok: true }
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) }
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Liveness and readiness for orchestrators and the compose healthcheck. Liveness says
 * the process serves; readiness also says its storage and database answer, so a load
 * balancer sends traffic only to replicas that can store files.
 */
export default async function healthRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.get('/health', {
    schema: {
      summary: 'Liveness',
      tags: ['operations'],
      security: [],
      response: { 200: Type.Object({ status: Type.Literal('ok') }) }
    }
  }, async () => ({ status: 'ok' as const }))

  app.get('/ready', {
    schema: {
      summary: 'Readiness',
      description: 'Checks the blob storage and the metadata database. 200 when both answer; 503 naming the failed check and its message otherwise. A refused reconciliation is shown (checks.reconciliation, errors.reconciliation) without failing readiness.',
      tags: ['operations'],
      security: [],
      response: { 200: ReadinessSchema, 503: ReadinessSchema }
    }
  }, async (request, reply) => {
    const [storage, database] = await Promise.all([probe(async () => app.blobStore.check()), probe(async () => app.fileStore.check())])
    // A refusal is shown but does not fail readiness: the replica serves every file it has,
    // and taking all replicas out of the balancer would turn a safety stop into an outage.
    const refusal = app.reconcileRefusal()
    const shown = refusal === null ? {} : { reconciliation: 'refused' as const }
    if (storage.ok && database.ok) {
      return refusal === null
        ? { status: 'ready' as const, checks: { storage: 'ok' as const, database: 'ok' as const } }
        : { status: 'ready' as const, checks: { storage: 'ok' as const, database: 'ok' as const, ...shown }, errors: { reconciliation: refusal.message } }
    }
    const errors: NonNullable<Readiness['errors']> = refusal === null ? {} : { reconciliation: refusal.message }
    if (!storage.ok) errors.storage = storage.message
    if (!database.ok) errors.database = database.message
    request.log.warn({ errors }, 'not ready')
    return reply.code(503).send({
      status: 'not_ready' as const,
      checks: { storage: storage.ok ? 'ok' as const : 'failed' as const, database: database.ok ? 'ok' as const : 'failed' as const, ...shown },
      errors
    })
  })
}
