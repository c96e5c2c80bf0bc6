import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { appImage, buildahStorage } from "./app-image.ts";
import { runCommand } from "./command.ts";

// `node test/env/app-image-smoke.ts`: builds (or finds cached) the app image from the Dockerfile
// (test/env/app-image.ts), prints its size and how long that took, and checks the archive the
// test node imports: the name containerd gives it, the configuration the kubelet reads (user,
// entrypoint), and, in a container of it, tini, `sluice diff` rendering a kustomization as the
// image's own user, and the helm and kustomize versions scripts/test-tools.sh pins. Needs root and
// buildah; exits non-zero on the first failed check.

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const started = performance.now();
const log = (line: string): void => {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
};
const failures: string[] = [];
function check(what: string, actual: unknown, expected: unknown): void {
  const ok = JSON.stringify(actual) === JSON.stringify(expected);
  if (!ok) failures.push(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  log(
    `app-image-smoke: ${ok ? "ok" : "FAILED"} ${what}${ok ? "" : `: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`}`,
  );
}

/** The version scripts/test-tools.sh builds a tool at: the `require` line of its wrapper module. */
async function pinnedVersion(tool: string, module: string): Promise<string> {
  const goMod = await readFile(join(ROOT, "test", "env", "tools", tool, "go.mod"), "utf8");
  const version = new RegExp(`^require ${module.replaceAll(".", "\\.")} (\\S+)$`, "m").exec(goMod)?.[1];
  if (version === undefined) throw new Error(`test/env/tools/${tool}/go.mod has no 'require ${module} vX' line`);
  return version;
}

/** A JSON file of the OCI archive. */
async function fromArchive(archive: string, member: string): Promise<unknown> {
  return JSON.parse(await runCommand("tar", ["-xOf", archive, member]));
}

const env = { ...process.env };
const image = await appImage(env, log);
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;

// What containerd and the kubelet read: the archive's index and the image configuration.
const index = (await fromArchive(image.path, "index.json")) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
const manifestDigest = index.manifests[0]?.digest.replace(/^sha256:/, "") ?? "";
check("containerd's name for the image", index.manifests[0]?.annotations?.["io.containerd.image.name"], image.name);
const manifest = (await fromArchive(image.path, `blobs/sha256/${manifestDigest}`)) as { config: { digest: string } };
const config = (await fromArchive(image.path, `blobs/sha256/${manifest.config.digest.replace(/^sha256:/, "")}`)) as {
  config: { User?: string; Entrypoint?: string[]; Cmd?: string[]; Env?: string[] };
};
check("image user", config.config.User, "1000:1000");
check("image entrypoint", config.config.Entrypoint, ["/usr/bin/tini", "--", "node", "/app/bin/sluice.js"]);
check("image command", config.config.Cmd, ["app"]);

// Inside a container of the archive (pulled into buildah's store, so the archive itself is tested).
const buildah = (args: string[]): Promise<string> => runCommand("buildah", [...buildahStorage(env), ...args], { env });
await buildah(["pull", "--quiet", `oci-archive:${image.path}`]);
const container = (await buildah(["from", "--pull=never", "--quiet", image.name])).trim();
const work = await mkdtemp(join(tmpdir(), "sluice-app-image-smoke-"));
try {
  const run = (command: string[], options: { mounts?: string[]; user?: string } = {}): Promise<string> =>
    buildah([
      "run",
      "--isolation=chroot",
      ...(options.user === undefined ? [] : [`--user=${options.user}`]),
      ...(options.mounts ?? []).map((mount) => `--volume=${mount}`),
      container,
      "--",
      ...command,
    ]).then((out) => out.trim());

  check("user of a process (the image's USER)", await run(["id", "-u"]), "1000");
  check("tini", await run(["/usr/bin/tini", "--version"]).then((out) => /^tini version \d/.test(out)), true);
  const helm = await pinnedVersion("helm", "helm.sh/helm/v3");
  const kustomize = await pinnedVersion("kustomize", "sigs.k8s.io/kustomize/kustomize/v5");
  check("helm version", await run(["/usr/local/bin/helm", "version", "--template", "{{.Version}}"]), helm);
  check("kustomize version", await run(["/usr/local/bin/kustomize", "version"]), kustomize);
  check("build-time trust mount left nothing in /usr/local/etc", await run(["ls", "-A", "/usr/local/etc"]), "");
  // A base without the official images' apt clean-up hook (the one made here) keeps 80 MB of apt caches otherwise.
  check(
    "no apt package lists, caches or .debs",
    await run(["find", "/var/lib/apt/lists", "/var/cache/apt", "-type", "f", "-size", "+0"], { user: "0:0" }),
    "",
  );

  // `sluice diff` through the entrypoint, rendering a kustomization with the image's kustomize.
  for (const [side, value] of [
    ["base", "1"],
    ["head", "2"],
  ] as const) {
    await runCommand("mkdir", ["-p", join(work, side)]);
    await runCommand(
      "sh",
      [
        "-c",
        `printf 'resources: [cm.yaml]\\n' > ${side}/kustomization.yaml && printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: x}\\ndata: {a: "${value}"}\\n' > ${side}/cm.yaml`,
      ],
      { cwd: work },
    );
  }
  await runCommand("chmod", ["-R", "a+rX", work]);
  // Exit code 1 is "changes": the shell prints it after the report instead of failing the run.
  const diff = await run(
    ["sh", "-c", '"$@"; echo "exit=$?"', "sh", ...(config.config.Entrypoint ?? []), "diff", "/in/base", "/in/head", "--format", "json"],
    { mounts: [`${work}:/in:ro`] },
  );
  check("sluice diff as uid 1000 exits 1 (changes)", /exit=(\d+)$/.exec(diff)?.[1], "1");
  check("sluice diff rendered the kustomization's ConfigMap", /ConfigMap/.test(diff), true);
  if (!/exit=1$/.test(diff)) log(diff);
} finally {
  await buildah(["rm", container]).catch(() => undefined);
  await rm(work, { recursive: true, force: true });
}

process.stdout.write(
  [
    `app-image-smoke: ${failures.length === 0 ? "OK" : "FAILED"}`,
    `  image        ${image.name}`,
    `  archive      ${image.path}`,
    `  size         ${mb(image.bytes)} archive (uncompressed), ${mb(image.sizeBytes)} of layers`,
    `  time         ${(image.buildMs / 1000).toFixed(1)} s (${image.built ? "built" : "cached archive"})`,
    ...failures.map((failure) => `  failed       ${failure}`),
    "",
  ].join("\n"),
);
process.exitCode = failures.length === 0 ? 0 : 1;
