import type { KubeObject } from "../src/core/manifest.ts";
import { stringify as toYaml } from "yaml";

// Renderers never emit anchors; neither does the generator.
const stringify = (value: unknown): string => toYaml(value, { aliasDuplicateObjects: false });

/** One side of a generated benchmark tree: multi-document YAML. */
export interface GeneratedPair {
  base: string;
  head: string;
  counts: { total: number; modified: number; added: number; removed: number };
}

/** Deterministic pseudo-random numbers (mulberry32), so every run compares the same files. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function resource(index: number, version: number): Record<string, unknown> {
  const app = `app-${Math.floor(index / 3)}`;
  const namespace = `team-${index % 20}`;
  const labels = { "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "bench" };
  switch (index % 3) {
    case 0:
      return {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: app, namespace, labels },
        spec: {
          replicas: 2 + version,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              containers: [
                {
                  name: "main",
                  image: `ghcr.io/example/${app}:1.${version}.0`,
                  ports: [{ containerPort: 8080 }],
                  resources: { requests: { cpu: "100m", memory: "128Mi" } },
                },
              ],
            },
          },
        },
      };
    case 1:
      return {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: app, namespace, labels },
        spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 + version }] },
      };
    default:
      return {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `${app}-config`, namespace, labels },
        data: { LOG_LEVEL: version ? "debug" : "info", FEATURE_FLAGS: "a,b,c", TIMEOUT: "30s" },
      };
  }
}

/** `total` resources (Deployments, Services, ConfigMaps); head has 5% modified, 1% added, 1% removed. */
export function generatePair(total: number, seed = 42): GeneratedPair {
  const next = random(seed);
  const base: string[] = [];
  const head: string[] = [];
  const counts = { total, modified: 0, added: 0, removed: 0 };
  for (let i = 0; i < total; i++) {
    const roll = next();
    base.push(stringify(resource(i, 0)));
    if (roll < 0.01) {
      counts.removed += 1;
    } else if (roll < 0.06) {
      counts.modified += 1;
      head.push(stringify(resource(i, 1)));
    } else {
      head.push(stringify(resource(i, 0)));
    }
  }
  for (let i = 0; i < Math.round(total / 100); i++) {
    head.push(stringify(resource(total + i, 0)));
    counts.added += 1;
  }
  return { base: base.join("---\n"), head: head.join("---\n"), counts };
}

/**
 * One resource as people write manifests by hand, shaped like podinfo's and argocd-example-apps':
 * flow lists and maps for args, ports, probes and resources, folded and literal strings, labels
 * anchored once and aliased or merged (`<<`) below, full-line and trailing comments.
 */
function handWrittenResource(index: number, version: number): string {
  const app = `app-${Math.floor(index / 3)}`;
  const namespace = `team-${index % 20}`;
  switch (index % 3) {
    case 0:
      return `# ${app}: the web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app}
  namespace: ${namespace}
  labels: &labels
    app.kubernetes.io/name: ${app}
    app.kubernetes.io/part-of: bench
  annotations:
    description: >-
      Serves the ${app} API behind
      the shared gateway.
spec:
  replicas: ${2 + version}  # the autoscaler takes over in production
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels:
        <<: *labels
        tier: web
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9797"}
    spec:
      containers:
      - name: main
        image: ghcr.io/example/${app}:1.${version}.0
        command: [./podinfo]
        args: ["--port=8080", "--port-metrics=9797", "--level=info", --random-delay=false]
        ports:
        - {name: http, containerPort: 8080, protocol: TCP}
        - {name: http-metrics, containerPort: 9797, protocol: TCP}
        env:
        - {name: PODINFO_UI_COLOR, value: "#34577c"}
        livenessProbe:
          exec: {command: [podcli, check, http, "localhost:8080/healthz"]}
          initialDelaySeconds: 5
        resources:
          limits: {cpu: 2000m, memory: 512Mi}
          requests: {cpu: 100m, memory: 64Mi}
`;
    case 1:
      return `apiVersion: v1
kind: Service
metadata:
  name: ${app}
  namespace: ${namespace}
  labels: {app.kubernetes.io/name: ${app}, app.kubernetes.io/part-of: bench}
spec:
  type: ClusterIP
  selector: {app.kubernetes.io/name: ${app}}
  ports:
    - name: http
      port: 80
      targetPort: ${8080 + version}   # the container's port
      protocol: TCP
    - {name: http-metrics, port: 9797, targetPort: 9797, protocol: TCP}
`;
    default:
      return `# settings for ${app}
apiVersion: v1
kind: ConfigMap
metadata:
  name: ${app}-config
  namespace: ${namespace}
  labels: {app.kubernetes.io/name: ${app}, app.kubernetes.io/part-of: bench}
data:
  LOG_LEVEL: ${version ? "debug" : "info"}
  FEATURE_FLAGS: "a,b,c"
  TIMEOUT: 30s
  config.yaml: |
    server:
      port: 8080   # part of the text, not a comment
      timeout: 30s
    features: [a, b, c]
  start.sh: |-
    #!/bin/sh
    exec /app --config /etc/app/config.yaml
`;
  }
}

/** The generated trees: block YAML as renderers write it, or manifests as people write them by hand. */
export type GeneratedStyle = "block" | "hand-written";

/**
 * `total` resources (Deployments, Services, ConfigMaps) in `style`; head has 5% modified, 1%
 * added, 1% removed.
 */
export function generateStyledPair(total: number, style: GeneratedStyle, seed = 42): GeneratedPair {
  if (style === "block") return generatePair(total, seed);
  const next = random(seed);
  const base: string[] = [];
  const head: string[] = [];
  const counts = { total, modified: 0, added: 0, removed: 0 };
  for (let i = 0; i < total; i++) {
    const roll = next();
    base.push(handWrittenResource(i, 0));
    if (roll < 0.01) {
      counts.removed += 1;
    } else if (roll < 0.06) {
      counts.modified += 1;
      head.push(handWrittenResource(i, 1));
    } else {
      head.push(handWrittenResource(i, 0));
    }
  }
  for (let i = 0; i < Math.round(total / 100); i++) {
    head.push(handWrittenResource(total + i, 0));
    counts.added += 1;
  }
  return { base: base.join("---\n"), head: head.join("---\n"), counts };
}

/** The flux-benchmark shape: per app a Deployment with 0 replicas, a ServiceAccount, a Service and an Ingress. */
export function fluxBenchmarkObjects(namespace: string, apps: number): KubeObject[] {
  const out: KubeObject[] = [{ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }];
  for (let i = 0; i < apps; i++) {
    const name = `app-${i}`;
    const labels = { app: name };
    out.push(
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } },
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace },
        spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
      },
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name, namespace },
        spec: {
          replicas: 0,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: name,
              containers: [{ name: "app", image: "ghcr.io/example/app:1.0.0", ports: [{ containerPort: 8080 }] }],
            },
          },
        },
      },
      {
        apiVersion: "networking.k8s.io/v1",
        kind: "Ingress",
        metadata: { name, namespace },
        spec: {
          rules: [
            {
              host: `${name}.example.com`,
              http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name, port: { number: 80 } } } }] },
            },
          ],
        },
      },
    );
  }
  return out;
}
