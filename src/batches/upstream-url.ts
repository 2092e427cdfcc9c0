/**
 * Upstream base URLs and the map from a line's model to one of them (issue 10 item 2).
 *
 * How a line's url joins a base URL. OpenAI's batch lines carry absolute API paths
 * (`/v1/chat/completions`), while OpenAI-compatible base URLs are written the way the
 * SDKs take them, with the version in them (`http://vllm:8000/v1`, LiteLLM's
 * `http://proxy:4000/v1`, or a prefixed `http://gw/openai/v1`). Plain concatenation would
 * send `/v1/v1/chat/completions`, a 404 on every such server. The rule, applied once:
 * - the base's path keeps its prefix (trailing slashes dropped);
 * - when that path ends in `/v1` and the line's url starts with `/v1/`, the line's
 *   `/v1` is dropped, so `http://vllm:8000/v1` + `/v1/chat/completions` →
 *   `/v1/chat/completions` and `http://gw/openai/v1` → `/openai/v1/chat/completions`;
 * - otherwise the url is appended whole: `http://vllm:8000` → `/v1/chat/completions`.
 * Nothing else is guessed (a base ending in `/v2` keeps `/v2/v1/...`): the rule is
 * small enough to state in the configuration docs and predict from a setting.
 */

export interface UpstreamBase {
  /** Origin only (`http://vllm:8000`): the key of the connection pool. */
  readonly origin: string
  /** Path prefix without trailing slash (`/v1`, or '' for none). */
  readonly pathPrefix: string
  /** The normalised base URL, as an operator would recognise it in logs and metrics. */
  readonly baseUrl: string
}

/** Parse and check a base URL; throws a plain Error naming the problem (config time). */
export function parseUpstreamBase (raw: string): UpstreamBase {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new Error(`upstream base URL is not a URL: ${JSON.stringify(raw)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`upstream base URL must be http or https: ${url.protocol}`)
  }
  // A key belongs in UPSTREAM_API_KEY (a secret, never logged), not in a URL that is.
  if (url.username !== '' || url.password !== '') throw new Error('upstream base URL must not carry credentials')
  if (url.search !== '' || url.hash !== '') throw new Error('upstream base URL must not carry a query or fragment')
  const pathPrefix = url.pathname.replace(/\/+$/, '')
  return { origin: url.origin, pathPrefix, baseUrl: url.origin + pathPrefix }
}

/** The request path for a line's url (`/v1/chat/completions`) on this base. */
export function upstreamPath (base: UpstreamBase, lineUrl: string): string {
  const url = lineUrl.startsWith('/') ? lineUrl : `/${lineUrl}`
  if (base.pathPrefix.endsWith('/v1') && url.startsWith('/v1/')) return base.pathPrefix + url.slice(3)
  return base.pathPrefix + url
}

/**
 * One base URL for every model, or a model → base URL map for deployments where each
 * server serves one model (vLLM, llama.cpp), with an optional fallback for the rest.
 */
export type UpstreamMap =
  | { readonly kind: 'single', readonly base: UpstreamBase }
  | { readonly kind: 'by_model', readonly models: ReadonlyMap<string, UpstreamBase>, readonly fallback: UpstreamBase | null }

export function singleUpstream (baseUrl: string): UpstreamMap {
  return { kind: 'single', base: parseUpstreamBase(baseUrl) }
}

export function upstreamsByModel (models: Readonly<Record<string, string>>, fallback?: string): UpstreamMap {
  const parsed = new Map<string, UpstreamBase>()
  for (const [model, baseUrl] of Object.entries(models)) parsed.set(model, parseUpstreamBase(baseUrl))
  return { kind: 'by_model', models: parsed, fallback: fallback === undefined ? null : parseUpstreamBase(fallback) }
}

export type UpstreamPick =
  | { readonly ok: true, readonly base: UpstreamBase }
  | { readonly ok: false, readonly code: 'model_not_routed', readonly message: string }

/** The upstream for a line's `body.model`; a model the map does not route is a final, per-line error. */
export function pickUpstream (map: UpstreamMap, body: unknown): UpstreamPick {
  if (map.kind === 'single') return { ok: true, base: map.base }
  const model = typeof body === 'object' && body !== null && 'model' in body ? body.model : undefined
  const routed = typeof model === 'string' ? map.models.get(model) : undefined
  if (routed !== undefined) return { ok: true, base: routed }
  if (map.fallback !== null) return { ok: true, base: map.fallback }
  const shown = typeof model === 'string' ? JSON.stringify(model.slice(0, 200)) : 'missing'
  return { ok: false, code: 'model_not_routed', message: `No upstream serves model ${shown}.` }
}

/** Every distinct base of a map (to open, or close, one pool each). */
export function upstreamBases (map: UpstreamMap): UpstreamBase[] {
  if (map.kind === 'single') return [map.base]
  const all = new Map<string, UpstreamBase>()
  for (const base of map.models.values()) all.set(base.baseUrl, base)
  if (map.fallback !== null) all.set(map.fallback.baseUrl, map.fallback)
  return [...all.values()]
}
