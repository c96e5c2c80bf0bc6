# syntax=docker/dockerfile:1
# Sluice image: the `sluice` command with kustomize and helm built from the same pinned modules the
# tests use. One image, three uses: `app` (default), `agent`, and `diff BASE HEAD`.
# Build: docker build -t sluice .

FROM golang:1.26-bookworm AS renderers
WORKDIR /src
COPY test/env/tools/kustomize ./kustomize
COPY test/env/tools/helm ./helm
RUN cd kustomize && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/kustomize sigs.k8s.io/kustomize/kustomize/v5 \
 && cd ../helm && minor=$(go list -m -f '{{.Version}}' k8s.io/client-go | sed -E 's/^v0\.([0-9]+)\..*/\1/') \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" -o /out/helm helm.sh/helm/v3/cmd/helm

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/bundle-cli.ts ./scripts/
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends util-linux bubblewrap ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=renderers /out/kustomize /out/helm /usr/local/bin/
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json app.yml ./
COPY bin ./bin
COPY views ./views
COPY schema ./schema
ENV NODE_ENV=production SLUICE_KUSTOMIZE=/usr/local/bin/kustomize SLUICE_HELM=/usr/local/bin/helm
USER node
EXPOSE 3000
ENTRYPOINT ["node", "/app/bin/sluice.js"]
CMD ["app"]
