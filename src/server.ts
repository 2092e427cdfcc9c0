import closeWithGrace from 'close-with-grace'
import { loadOrCreateGeneratedKey, parseApiKeys } from './api-keys.js'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { DeploymentMismatchError } from './reconcile/deployment.js'

/** Loads the settings, builds the app, listens, and closes gracefully on signals. */
async function main (): Promise<void> {
  const config = loadConfig(process.env)
  const generated = config.API_KEYS === undefined ? await loadOrCreateGeneratedKey(config.DATA_DIR) : undefined
  const keys = generated?.table ?? parseApiKeys(config.API_KEYS ?? '')
  const app = await buildApp({ config, keys })
  if (generated !== undefined) {
    // Where the key is, never the key itself.
    app.log.warn({ file: generated.file, created: generated.created },
      'API_KEYS is not set: using the generated key for project "default"; read it from this file (mode 0600)')
  }
  // app.close() stops accepting at once, lets uploads run for SHUTDOWN_TIMEOUT_MS, then
  // abandons the rest (plugins/graceful-shutdown.ts); the extra 10 s let those answer 503
  // and the stores close before close-with-grace gives up and exits anyway.
  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS + 10_000 }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
    else app.log.info({ signal }, 'closing')
    await app.close()
  })
  await app.listen({ port: config.PORT, host: config.HOST })
}

main().catch((error: unknown) => {
  // A bad setting stops start-up with a message naming the variable, not a stack trace.
  if (error instanceof ConfigError || error instanceof DeploymentMismatchError) {
    process.stderr.write(`files-api: ${error.message}\n`)
  } else {
    process.stderr.write(`files-api: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  }
  process.exit(1)
})
