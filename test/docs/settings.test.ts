import { readFile } from 'node:fs/promises'
import t from 'tap'
import { ConfigSchema } from '../../schemas/config.js'

t.test('docs/configuration.md documents every setting, with its default', async (t) => {
  const page = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8')
  const rows = page.split('\n').filter((line) => line.startsWith('| `'))
  const properties = ConfigSchema.properties as Record<string, { default?: unknown }>
  for (const [name, schema] of Object.entries(properties)) {
    const row = rows.find((line) => (line.split('|')[1] ?? '').includes(`\`${name}\``))
    t.ok(row, `${name} has a row in the settings table`)
    if (row !== undefined && schema.default !== undefined && typeof schema.default !== 'string') {
      t.ok(row.includes(`\`${String(schema.default)}\``), `${name}: the default ${String(schema.default)} is shown`)
    }
  }
})
