import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export interface OpenApiPluginOptions {
  version: string
}

/**
 * The OpenAPI document is generated from the route schemas (TypeBox), served as
 * `/openapi.json`, with an interactive page at `/docs`. Register before the routes.
 */
async function openApiPlugin (app: FastifyInstance, options: OpenApiPluginOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'files-api',
        version: options.version,
        description: 'OpenAI-compatible Files, Uploads and Batches API. `/v1/files`, `/v1/uploads` and `/v1/batches` answer in OpenAI\'s shapes (the official SDKs work unchanged); `/api/v1/files`, `/api/v1/uploads` and `/api/v1/batches` answer the same data wrapped in `{success, code, message, data}`.'
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key from API_KEYS (or the generated DATA_DIR/api-key).' } }
      },
      security: [{ bearerAuth: [] }]
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}

export default fp(openApiPlugin, { name: 'openapi', fastify: '5.x' })
