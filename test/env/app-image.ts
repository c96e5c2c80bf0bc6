import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { runCommand } from "./command.ts";
import { cacheRoot, cached, goBaseImage, hostTrustStore, type ImageArchive, nodeBaseImage } from "./image.ts";

// The app image for the tests that install the shipped manifests on the test node (issue 24): built
// from the repository's Dockerfile with buildah (no Docker engine, no registry), on base images made
// here (image.ts), and written as an OCI archive that `ctr -n k8s.io images import` takes under the
// very name deploy/app and deploy/agent pull, so `kubectl apply -k` finds it without a pull.

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The repository the manifests' `images:` entries name. */
export const APP_IMAGE_REPOSITORY = "ghcr.io/sluice-dev/sluice";

/** Bumped when the way the app image is built changes, so an archive cached by an older recipe is rebuilt. */
const RECIPE = "1";

/** What the Dockerfile reads (its COPY sources) and what builds it: a change to any of these rebuilds the image. */
const INPUTS = [
  "Dockerfile",
  ".dockerignore",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "tsconfig.build.json",
  "app.yml",
  "src",
  "bin",
  "views",
  "schema",
  "scripts/bundle-cli.ts",
  "scripts/test-tools.sh",
  "test/env/tools/kustomize",
  "test/env/tools/helm",
];

/** The manifests whose `images:` entry must name this release. */
const KUSTOMIZATIONS = ["deploy/app/kustomization.yaml", "deploy/agent/kustomization.yaml"];

/** How many app image archives stay cached (each is a few hundred MB): this one and the one before. */
const KEEP_ARCHIVES = 2;

/** The app image's OCI archive, ready for `ctr -n k8s.io images import`. */
export interface AppImage extends ImageArchive {
  /** The release: package.json's `version`, which is also the `newTag` of deploy/app's and deploy/agent's `images:`. */
  version: string;
  /** The image's layers unpacked, in bytes (the archive holds them uncompressed, so `bytes` is a little more). */
  sizeBytes: number;
  /** How long this call took, in milliseconds: the build, or finding the cached archive. */
  buildMs: number;
}

/**
 * Builds the app image `ghcr.io/sluice-dev/sluice:<version>` from the repository's Dockerfile with
 * buildah, on the Node and Go base images made by image.ts (`NODE_IMAGE`, `GO_IMAGE`), and returns
 * its OCI archive. The archive is cached by a hash of everything the build reads, so an unchanged
 * tree returns at once; buildah keeps its layers and its Go and npm caches under
 * `<cache>/buildah`, so a change to src/ rebuilds only the TypeScript. Needs root and buildah
 * (`apt-get install -y buildah`); reaches the Go module proxy, the npm registry and the Debian
 * mirror on a cold build.
 */
export async function appImage(env: NodeJS.ProcessEnv, log: (line: string) => void = () => undefined): Promise<AppImage> {
  const started = performance.now();
  await requireBuildah(env);
  const version = await releaseVersion();
  const name = `${APP_IMAGE_REPOSITORY}:${version}`;
  const node = await nodeBaseImage(env, {}, log);
  const go = await goBaseImage(env, {}, log);
  const trust = await hostTrustStore(env);
  const key = createHash("sha256")
    .update(JSON.stringify({ recipe: RECIPE, inputs: await inputsHash(), node: node.path, go: go.path, trust: trust?.sha256 }))
    .digest("hex")
    .slice(0, 12);
  const dir = join(cacheRoot(env), `app-image-${version}-${key}`);

  const archive = await cached(dir, name, async (work, out) => {
    const storage = buildahStorage(env);
    await mkdir(join(cacheRoot(env), "buildah", "tmp"), { recursive: true });
    for (const base of [node, go]) await ensureBaseImage(env, base, log);

    const args = [
      ...storage,
      "build",
      "--layers",
      // A failed step leaves no container behind in the store kept between runs.
      "--force-rm",
      "--pull=never",
      "--network=host",
      // Steps run chrooted, without an OCI runtime, so the host's cgroups and OOM settings do not
      // matter (runc works here too, but needs more of the host for nothing these steps use).
      "--isolation=chroot",
      // The Go tools and the npm stages in parallel: one waits on the CPU, the others on the network.
      "--jobs=2",
      `--build-arg=NODE_IMAGE=${node.name}`,
      `--build-arg=GO_IMAGE=${go.name}`,
      ...(await trustMount(env, trust)),
      `--tag=${name}`,
      `--file=${join(ROOT, "Dockerfile")}`,
      ROOT,
    ];
    log(`app-image: buildah build ${name}`);
    const buildStarted = performance.now();
    await streamCommand("buildah", args, buildahEnv(env), (line) => {
      log(`app-image: ${line}`);
    });
    const written = performance.now();
    log(`app-image: built in ${seconds(written - buildStarted)}`);

    // buildah 1.28 compresses layers for an `oci:` destination even with --disable-compression;
    // `dir:` keeps them as stored, which is faster to write and to import, and leaves the base
    // image's layer byte for byte the archive's, so containerd already holds it.
    const dir = join(work, "dir");
    await runCommand("buildah", [...storage, "push", "--quiet", "--disable-compression", "--format=oci", name, `dir:${dir}`], {
      env: buildahEnv(env),
    });
    const layout = join(work, "layout");
    const sizeBytes = await ociLayoutFromDir(dir, layout, name);
    await runCommand("tar", [
      "--sort=name",
      "--numeric-owner",
      "--mtime=@0",
      "-C",
      layout,
      "-cf",
      out,
      "index.json",
      "oci-layout",
      "blobs",
    ]);
    await rm(layout, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    log(`app-image: archive of ${Math.round(sizeBytes / 1e6)} MB written in ${seconds(performance.now() - written)}`);
    await writeFile(join(work, "image.json"), JSON.stringify({ name, version, sizeBytes }));
  });
  if (archive.built) await pruneArchives(env, dir);

  const { sizeBytes } = JSON.parse(await readFile(join(dir, "image.json"), "utf8")) as { sizeBytes: number };
  return { ...archive, version, sizeBytes, buildMs: Math.round(performance.now() - started) };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** buildah's global options: its image store and run state under `<cache>/buildah`, kept between runs for its layer cache. */
export function buildahStorage(env: NodeJS.ProcessEnv): string[] {
  const dir = join(cacheRoot(env), "buildah");
  return [`--root=${join(dir, "storage")}`, `--runroot=${join(dir, "run")}`, "--storage-driver=overlay"];
}

/** buildah keeps `RUN --mount=type=cache` directories under TMPDIR: there they survive with the layers. */
function buildahEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, TMPDIR: join(cacheRoot(env), "buildah", "tmp") };
}

async function requireBuildah(env: NodeJS.ProcessEnv): Promise<void> {
  await runCommand("buildah", ["--version"], { env }).catch((error: unknown) => {
    throw new Error("the app image is built with buildah, and `buildah --version` failed: install it with `apt-get install -y buildah`", {
      cause: error,
    });
  });
}

/** package.json's version, checked against each kustomization's `images:` entry for the app image. */
async function releaseVersion(): Promise<string> {
  const { version } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version?: unknown };
  if (typeof version !== "string" || version === "")
    throw new Error(`package.json: version is ${JSON.stringify(version)}, expected a release such as "0.1.0"`);
  for (const file of KUSTOMIZATIONS) {
    const kustomization = parse(await readFile(join(ROOT, file), "utf8")) as { images?: { name?: string; newTag?: unknown }[] } | null;
    const entry = kustomization?.images?.find((image) => image.name === APP_IMAGE_REPOSITORY);
    if (entry?.newTag !== version) {
      throw new Error(
        `${file}: images[name=${APP_IMAGE_REPOSITORY}].newTag is ${JSON.stringify(entry?.newTag)}, but package.json's version is "${version}": they must name the same release`,
      );
    }
  }
  return version;
}

/** A hash of every input's relative path, mode and content, in a fixed order. */
async function inputsHash(): Promise<string> {
  const hash = createHash("sha256");
  const visit = async (path: string): Promise<void> => {
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) {
      hash.update(`${relative(ROOT, path)}\0missing\n`);
    } else if (info.isDirectory()) {
      for (const entry of (await readdir(path)).sort()) await visit(join(path, entry));
    } else {
      const content = createHash("sha256")
        .update(await readFile(path))
        .digest("hex");
      hash.update(`${relative(ROOT, path)}\0${(info.mode & 0o777).toString(8)}\0${content}\n`);
    }
  };
  for (const input of INPUTS) await visit(join(ROOT, input));
  return hash.digest("hex");
}

/** Puts a base image's archive into buildah's store, unless the image of that name there is already this archive's. */
async function ensureBaseImage(env: NodeJS.ProcessEnv, base: ImageArchive, log: (line: string) => void): Promise<void> {
  const index = JSON.parse(await runCommand("tar", ["-xOf", base.path, "index.json"])) as { manifests: { digest: string }[] };
  const wanted = index.manifests[0]?.digest;
  const present = await runCommand(
    "buildah",
    [...buildahStorage(env), "inspect", "--type=image", "--format={{.FromImageDigest}}", base.name],
    {
      env: buildahEnv(env),
    },
  ).then(
    (output) => output.trim(),
    () => undefined,
  );
  if (present !== undefined && present === wanted) return;
  log(`app-image: loading ${base.name} from ${base.path}`);
  await runCommand("buildah", [...buildahStorage(env), "pull", "--quiet", `oci-archive:${base.path}`], { env: buildahEnv(env) });
}

/**
 * Lets npm in the build's RUN steps trust what this machine trusts (a TLS-inspecting proxy's CA
 * included), without a trace in any layer: a directory with the host's CA bundle and an npmrc
 * naming it is mounted read-only over /usr/local/etc, where npm reads its global configuration
 * (its prefix is /usr/local in the Node image) and which Debian ships empty.
 */
async function trustMount(env: NodeJS.ProcessEnv, trust: { path: string } | undefined): Promise<string[]> {
  if (trust === undefined) return [];
  const dir = join(cacheRoot(env), "buildah", "trust");
  await mkdir(dir, { recursive: true });
  await copyFile(trust.path, join(dir, "ca-certificates.crt"));
  await writeFile(join(dir, "npmrc"), "cafile=/usr/local/etc/ca-certificates.crt\n");
  return [`--volume=${dir}:/usr/local/etc:ro`];
}

/**
 * Turns the `dir:` copy of an image into an OCI layout named `name` (both annotations: containerd
 * names an imported image by io.containerd.image.name, buildah and skopeo by the OCI ref name).
 * Blobs are moved, not copied. A layer's media type follows its bytes, since buildah's `dir:` copy
 * keeps the gzip media types of layers it wrote uncompressed. Returns the size of the layers.
 */
async function ociLayoutFromDir(dir: string, layout: string, name: string): Promise<number> {
  interface Descriptor {
    mediaType: string;
    digest: string;
    size: number;
  }
  const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as { config: Descriptor; layers: Descriptor[] };
  const blobs = join(layout, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const hex = (digest: string): string => digest.replace(/^sha256:/, "");
  for (const layer of manifest.layers) {
    const path = join(dir, hex(layer.digest));
    const head = Buffer.alloc(2);
    const file = await open(path);
    await file.read(head, 0, 2, 0).finally(() => file.close());
    const gzip = head[0] === 0x1f && head[1] === 0x8b;
    layer.mediaType = gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar";
    layer.size = (await stat(path)).size;
    await rename(path, join(blobs, hex(layer.digest)));
  }
  await rename(join(dir, hex(manifest.config.digest)), join(blobs, hex(manifest.config.digest)));
  const text = JSON.stringify(manifest);
  const digest = createHash("sha256").update(text).digest("hex");
  await writeFile(join(blobs, digest), text);
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: `sha256:${digest}`,
        size: Buffer.byteLength(text),
        platform: { architecture: "amd64", os: "linux" },
        annotations: { "io.containerd.image.name": name, "org.opencontainers.image.ref.name": name },
      },
    ],
  };
  await writeFile(join(layout, "index.json"), JSON.stringify(index));
  await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  return manifest.layers.reduce((sum, layer) => sum + layer.size, 0);
}

/** Removes cached app image archives beyond the newest {@link KEEP_ARCHIVES}, never `current`. */
async function pruneArchives(env: NodeJS.ProcessEnv, current: string): Promise<void> {
  const root = cacheRoot(env);
  const dirs = (await readdir(root)).filter((entry) => /^app-image-.+-[0-9a-f]{12}$/.test(entry)).map((entry) => join(root, entry));
  const dated = await Promise.all(dirs.map(async (dir) => ({ dir, mtime: (await stat(dir)).mtimeMs })));
  const old = dated
    .filter(({ dir }) => dir !== current)
    .sort((a, b) => b.mtime - a.mtime)
    .slice(KEEP_ARCHIVES - 1);
  for (const { dir } of old) await rm(dir, { recursive: true, force: true });
}

/** Runs a long command, passing each line of its output to `onLine`; on failure the error carries the last lines. */
function streamCommand(command: string, args: readonly string[], env: NodeJS.ProcessEnv, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    let partial = { stdout: "", stderr: "" };
    const take = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      const lines = (partial[stream] + chunk.toString("utf8")).split("\n");
      partial = { ...partial, [stream]: lines.pop() ?? "" };
      for (const line of lines) {
        onLine(line);
        tail.push(line);
        if (tail.length > 30) tail.shift();
      }
    };
    child.stdout.on("data", take("stdout"));
    child.stderr.on("data", take("stderr"));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(" ")} failed (${code ?? signal}):\n${tail.join("\n")}`));
    });
  });
}
