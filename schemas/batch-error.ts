import Type, { type Static } from 'typebox'

/**
 * One faulty line of a batch file, in OpenAI's BatchError shape
 * (https://platform.openai.com/docs/api-reference/batch/object: errors.data[]).
 * `line` is the 1-based physical line number (blank lines counted), or null for an
 * error about the whole file.
 */
export const BatchErrorSchema = Type.Object({
  code: Type.String({ description: 'Machine-readable rule code, e.g. `duplicate_custom_id`.' }),
  message: Type.String({ description: 'What is wrong and how to fix it, naming the line.' }),
  param: Type.Union([Type.String(), Type.Null()], { description: 'The field at fault, e.g. `body.model`.' }),
  line: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: '1-based physical line number.' })
}, { $id: 'BatchError' })
export type BatchError = Static<typeof BatchErrorSchema>
