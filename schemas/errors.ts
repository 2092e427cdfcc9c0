import Type, { type Static } from 'typebox'
import { BatchErrorSchema } from './batch-error.js'

/**
 * OpenAI's `Error` object. An invalid batch file also carries `errors` (the faulty
 * lines, capped) and `error_count` (all of them), so one response names every line.
 */
export const ErrorObjectSchema = Type.Object({
  message: Type.String({ description: 'What went wrong, readable by a person.' }),
  type: Type.String({ description: 'Error class, e.g. `invalid_request_error`, `server_error`.' }),
  param: Type.Union([Type.String(), Type.Null()], { description: 'The parameter at fault, if any.' }),
  code: Type.Union([Type.String(), Type.Null()], { description: 'Machine-readable error code.' }),
  errors: Type.Optional(Type.Array(BatchErrorSchema, { description: 'Faulty lines of an invalid batch file (at most 100).' })),
  error_count: Type.Optional(Type.Integer({ minimum: 0, description: 'How many faulty lines the batch file has in all.' }))
}, { $id: 'ErrorObject' })
export type ErrorObject = Static<typeof ErrorObjectSchema>

/** OpenAI's `ErrorResponse`, the error body of the `/v1` family. */
export const ErrorResponseSchema = Type.Object({ error: ErrorObjectSchema }, {
  $id: 'ErrorResponse', description: 'Error (OpenAI shape).'
})
export type ErrorResponse = Static<typeof ErrorResponseSchema>
