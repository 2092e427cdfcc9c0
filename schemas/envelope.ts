import Type, { type Static, type TSchema } from 'typebox'
import { ErrorObjectSchema } from './errors.js'

/**
 * The `/api/v1` contract given to the first users: every answer is wrapped in
 * `{success, code, message, data}`, with `code` the HTTP status as a string.
 */
export function EnvelopeSchema<T extends TSchema> (data: T, description: string) {
  return Type.Object({
    success: Type.Literal(true),
    code: Type.Literal('200'),
    message: Type.Literal('successful'),
    data
  }, { description })
}

export const ErrorEnvelopeSchema = Type.Object({
  success: Type.Literal(false),
  code: Type.String({ description: 'The HTTP status, as a string.', examples: ['400'] }),
  message: Type.String({ description: 'Same as data.error.message.' }),
  data: Type.Object({ error: ErrorObjectSchema })
}, { $id: 'ErrorEnvelope', description: 'Error (envelope shape).' })
export type ErrorEnvelope = Static<typeof ErrorEnvelopeSchema>

export function envelope<T> (data: T): { success: true, code: '200', message: 'successful', data: T } {
  return { success: true, code: '200', message: 'successful', data }
}
