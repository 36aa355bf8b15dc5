# berth API image. Build from the repo root:
#   docker build -f docker/api.Dockerfile -t berth/api .
FROM node:20-bookworm-slim AS build
WORKDIR /app
# Manifests first so the `npm ci` layer is cached until a dependency changes. npm ci needs every workspace's
# package.json, even those this image doesn't ship.
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY packages/contracts/package.json packages/contracts/
COPY packages/store/package.json packages/store/
COPY packages/manifests/package.json packages/manifests/
COPY packages/telemetry/package.json packages/telemetry/
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/stack/package.json apps/stack/
COPY apps/cli/package.json apps/cli/
COPY apps/web/package.json apps/web/
RUN npm ci --no-audit --no-fund
COPY packages packages
COPY apps apps
# Builds the API and the packages it references; then drops dev dependencies from node_modules.
# The dashboard is bundled here too: the API serves it at /.
RUN npx tsc -b apps/api && npm run build -w apps/web && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0 BERTH_DATA_DIR=/var/lib/berth
WORKDIR /app
# Workspace packages are symlinked from node_modules/@berth, so their package.json and dist come along.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/packages/contracts/package.json packages/contracts/
COPY --from=build /app/packages/contracts/dist packages/contracts/dist
COPY --from=build /app/packages/store/package.json packages/store/
COPY --from=build /app/packages/store/dist packages/store/dist
COPY --from=build /app/packages/store/lua packages/store/lua
COPY --from=build /app/packages/manifests/package.json packages/manifests/
COPY --from=build /app/packages/manifests/dist packages/manifests/dist
# The recipe catalog, validated at start-up (BERTH_MANIFESTS_DIR defaults to ./ngc-manifests).
COPY ngc-manifests ngc-manifests
COPY --from=build /app/apps/api/package.json apps/api/
COPY --from=build /app/apps/api/dist apps/api/dist
COPY --from=build /app/apps/web/dist apps/web/dist
# The artifact store; created here so a fresh named volume inherits the non-root owner.
RUN mkdir -p /var/lib/berth && chown node:node /var/lib/berth
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "apps/api/dist/main.js"]
