# Build stage: compile TypeScript (and the native better-sqlite3 module).
FROM node:24-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY wasm ./wasm
COPY src ./src
COPY plugins ./plugins
COPY schemas ./schemas
COPY public ./public
RUN npm run build && npm prune --omit=dev

# Run stage: only the build output and production dependencies, as a non-root user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The console's page (GET /console), read from beside dist/ at start.
COPY --from=build /app/public ./public
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
# V8 heap flags, the same as `npm start` (docs/operations.md#memory): they bound the garbage V8
# keeps before collecting it, which is most of the RSS a long batch grows by.
CMD ["node", "--max-semi-space-size=16", "--heap-growing-percent=50", "--scavenger-max-new-space-capacity-mb=4", "dist/src/server.js"]
