import { readFile } from 'node:fs/promises'
import { Ajv } from 'ajv'

/**
 * OpenAI's published schemas (copies of ../shared/openai-spec/ in test/fixtures, so the
 * suite needs nothing outside the repository), compiled once: OpenAPI 3.0 (nullable,
 * x-* keywords), so ajv runs with strict off and formats (`unixtime`) ignored; the
 * spec's `#/components/schemas/…` refs resolve inside one root document `openai`.
 */
export type JsonSchema = Record<string, unknown> & { properties?: Record<string, unknown>, required?: string[] }

async function fixture (name: string): Promise<Record<string, JsonSchema>> {
  return (JSON.parse(await readFile(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as { schemas: Record<string, JsonSchema> }).schemas
}

/**
 * OpenAI's Batch with `null` allowed for each property it does not require: a batch's
 * unset fields are null, as OpenAI answers them (its own examples show `"errors": null`,
 * `"in_progress_at": null`), which the strict schema refuses.
 */
export function withNulls (batch: JsonSchema): JsonSchema {
  const required = new Set(batch.required ?? [])
  const properties = Object.fromEntries(Object.entries(batch.properties ?? {}).map(([name, schema]) =>
    [name, required.has(name) ? schema : { anyOf: [schema, { type: 'null' }] }]))
  return { ...batch, properties }
}

export const batchSchemas = await fixture('openai-batches-spec.json')
export const fileSchemas = await fixture('openai-files-spec.json')
export const lineSchemas = await fixture('openai-batch-lines.json')
export const uploadSchemas = await fixture('openai-uploads-spec.json')

/**
 * OpenAI's Upload, its `file` read as OpenAPI 3.0 means it (`nullable: true` in an allOf:
 * the File or null), which plain JSON Schema would read as "never null".
 */
function uploadWithNullableFile (upload: JsonSchema): JsonSchema {
  return { ...upload, properties: { ...upload.properties, file: { anyOf: [{ $ref: '#/components/schemas/OpenAIFile' }, { type: 'null' }] } } }
}

export const openAiAjv = new Ajv({ strict: false, validateFormats: false })
openAiAjv.addSchema({ $id: 'openai', components: { schemas: { ...uploadSchemas, ...fileSchemas, ...batchSchemas, ...lineSchemas, BatchWithNulls: withNulls(batchSchemas.Batch!), Upload: uploadWithNullableFile(uploadSchemas.Upload!) } } })

/** A validator of one of OpenAI's schemas by name (Batch, BatchWithNulls, BatchRequestOutput, …). */
export function openAiValidator (name: string): ReturnType<Ajv['compile']> {
  return openAiAjv.compile({ $ref: `openai#/components/schemas/${name}` })
}
