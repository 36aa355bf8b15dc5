# berth worker image (one per GPU host). Build from the repo root:
#   docker build -f docker/worker.Dockerfile -t berth/worker .
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
# Builds the worker and the packages it references; then drops dev dependencies from node_modules.
RUN npx tsc -b apps/worker && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production BERTH_DATA_DIR=/var/lib/berth
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
COPY --from=build /app/packages/telemetry/package.json packages/telemetry/
COPY --from=build /app/packages/telemetry/dist packages/telemetry/dist
# The recipe catalog, validated at start-up (BERTH_MANIFESTS_DIR defaults to ./ngc-manifests).
COPY ngc-manifests ngc-manifests
COPY --from=build /app/apps/worker/package.json apps/worker/
COPY --from=build /app/apps/worker/dist apps/worker/dist
# Runs as root on purpose: the worker drives the host's Docker through /var/run/docker.sock, which is
# root:docker 0660 (and root-equivalent whatever user holds it). To drop root, run it as `node` and add the
# host's docker group id (compose: `user: node` + `group_add: ["<gid of docker.sock>"]`).
CMD ["node", "apps/worker/dist/main.js"]
