# syntax=docker/dockerfile:1
# Sluice image: the `sluice` command with kustomize and helm built from the same pinned modules the
# tests use. One image, three uses: `app` (default), `agent`, and `diff BASE HEAD`.
# Build: docker build -t sluice .
#
# The base images are build arguments: a release passes them pinned by digest
# (`--build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:…`, README "Releasing"), and a machine
# without a registry passes base images it made itself.
ARG GO_IMAGE=golang:1.26-bookworm
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${GO_IMAGE} AS renderers
WORKDIR /src
# The tests' own recipe builds the tools: the same versions (the wrapper modules' go.mod) and the
# same -ldflags (version strings, helm's Kubernetes version), so the image runs what CI tested.
COPY scripts/test-tools.sh ./scripts/
COPY test/env/tools/kustomize ./test/env/tools/kustomize
COPY test/env/tools/helm ./test/env/tools/helm
# Cache mounts (BuildKit, buildah) keep Go's module and build caches between builds, out of the
# layer, at paths of their own that do not depend on the base image's user or GOPATH.
ENV GOMODCACHE=/cache/go-mod GOCACHE=/cache/go-build
RUN --mount=type=cache,target=/cache/go-mod --mount=type=cache,target=/cache/go-build \
    SLUICE_TOOLS_CACHE=/tools bash scripts/test-tools.sh kustomize helm \
 && mkdir /out && cp /tools/kustomize-*/kustomize /tools/helm-*/helm /out/

# The production dependencies in a stage of their own, so that a change to src/ leaves them cached.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/cache/npm npm ci --omit=dev --no-audit --no-fund --cache /cache/npm

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/cache/npm npm ci --no-audit --no-fund --cache /cache/npm
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/bundle-cli.ts ./scripts/
RUN npm run build

FROM ${NODE_IMAGE}
# tini is PID 1: it reaps the orphans of render processes (helm and kustomize children whose
# parent died) and passes signals on to node. `apt-get clean`: a base without the official images'
# apt clean-up hook would keep 80 MB of package caches in this layer.
RUN apt-get update && apt-get install -y --no-install-recommends util-linux bubblewrap ca-certificates tini && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=renderers /out/kustomize /out/helm /usr/local/bin/
COPY --from=deps /app/node_modules ./node_modules
COPY package.json app.yml ./
COPY bin ./bin
COPY views ./views
COPY schema ./schema
# Last: the layer that changes with every change to src/.
COPY --from=build /app/dist ./dist
ENV NODE_ENV=production SLUICE_KUSTOMIZE=/usr/local/bin/kustomize SLUICE_HELM=/usr/local/bin/helm
# Numeric, so the kubelet can check runAsNonRoot against the image itself (node in the base image).
USER 1000:1000
EXPOSE 3000
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/sluice.js"]
CMD ["app"]
