import { defaultConfig } from "../../core/config-defaults.ts";
import { CONFIG_PATH } from "../../core/config-path.ts";
import { validateConfig, type Config } from "../../core/config.ts";
import type { ReportProblem } from "../../core/diff-report.ts";
import { discoverConfig } from "../../render/discover.ts";
import { type RepositoryRef } from "../../core/git-ref.ts";
import type { GitHubClient, RepoName } from "./client.ts";
import type { CheckoutCache } from "../checkouts/checkout-cache.ts";

/** A repository's configuration at one commit: valid, or every problem with its line. */
export type ConfigAt = { ok: true; config: Config; sha: string; fromFile: boolean } | { ok: false; errors: ReportProblem[] };

/** Finds the environments of a commit without a configuration file (see `discoverConfig`). */
export type Discover = (sha: string, branch: string) => Promise<Config>;

/**
 * Reads the configuration at a commit: the file if present (validated); otherwise what `discover`
 * finds in the commit's tree, or the whole checkout as one lenient environment.
 */
export async function configAt(
  gh: GitHubClient,
  repository: RepoName,
  sha: string,
  options: { branch?: string; discover?: Discover } = {},
): Promise<ConfigAt> {
  const text = await gh.fileAt(repository, CONFIG_PATH, sha);
  if (text === undefined) {
    const branch = options.branch ?? "main";
    return { ok: true, config: options.discover ? await options.discover(sha, branch) : defaultConfig(branch), sha, fromFile: false };
  }
  const result = validateConfig(text, CONFIG_PATH);
  return result.ok
    ? { ...result, sha, fromFile: true }
    : { ok: false, errors: result.errors.map((e) => ({ file: e.file, line: e.line, message: e.detail, side: "base" as const })) };
}

/**
 * The reviewed configuration: the one at the head of the repository's default branch. Deploys,
 * commands and drift read only this, so neither a pull request nor a push to another branch can
 * change what deploys where, who may run commands, or how.
 */
export async function reviewedConfig(gh: GitHubClient, repository: RepoName, discover?: Discover): Promise<ConfigAt> {
  const branch = await gh.defaultBranch(repository);
  return configAt(gh, repository, await gh.branchSha(repository, branch), { branch, ...(discover ? { discover } : {}) });
}

/** Discovery over the commit's checkout, fetched into the cache once. */
export function discoverFromCheckout(checkouts: CheckoutCache, gh: GitHubClient, repository: RepositoryRef): Discover {
  return async (sha, branch) => {
    const lease = await checkouts.acquire(`${repository.id}-${sha}`, () => gh.tarball(repository, sha));
    try {
      return await discoverConfig(lease.dir, branch);
    } finally {
      lease.release();
    }
  };
}
