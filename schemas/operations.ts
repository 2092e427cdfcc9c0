import Type, { type Static } from 'typebox'

const CheckState = Type.Union([Type.Literal('ok'), Type.Literal('failed')])

/** `GET /ready`: each dependency's state; `errors` says why a failed one failed (never a secret). */
export const ReadinessSchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: Type.Object({
    storage: CheckState,
    database: CheckState,
    // Only present after a refusal: the replica still serves files, so it stays ready.
    reconciliation: Type.Optional(Type.Literal('refused', { description: 'The last reconciliation repaired nothing because it looked unsafe (see errors.reconciliation); files are still served.' }))
  }),
  errors: Type.Optional(Type.Object({
    storage: Type.Optional(Type.String()),
    database: Type.Optional(Type.String()),
    reconciliation: Type.Optional(Type.String())
  }, { description: 'Present when a check failed: what it reported.' }))
}, { description: 'Readiness of the blob storage and the metadata database.' })

export type Readiness = Static<typeof ReadinessSchema>
