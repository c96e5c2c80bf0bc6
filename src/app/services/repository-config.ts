import { CONFIG_PATH, defaultConfig, validateConfig, type Config } from "../../core/config.ts";
import type { ReportProblem } from "../../core/report.ts";
import type { GitHubClient, RepoCoordinates } from "../github/client.ts";

/** A repository's configuration at one commit: valid, or every problem with its line. */
export type ConfigAt = { ok: true; config: Config; sha: string } | { ok: false; errors: ReportProblem[] };

/** Reads the configuration at a commit: the file if present (validated), the default otherwise. */
export async function configAt(gh: GitHubClient, repo: RepoCoordinates, sha: string): Promise<ConfigAt> {
  const text = await gh.fileAt(repo, CONFIG_PATH, sha);
  if (text === undefined) return { ok: true, config: defaultConfig(), sha };
  const result = validateConfig(text, CONFIG_PATH);
  return result.ok ? { ...result, sha } : { ok: false, errors: result.errors.map((e) => ({ file: e.file, line: e.line, message: e.detail, side: "base" as const })) };
}

/**
 * The reviewed configuration: the one at the head of the repository's default branch. Deploys,
 * commands and drift read only this, so neither a pull request nor a push to another branch can
 * change what deploys where, who may run commands, or how.
 */
export async function reviewedConfig(gh: GitHubClient, repo: RepoCoordinates): Promise<ConfigAt> {
  const branch = await gh.defaultBranch(repo);
  return configAt(gh, repo, await gh.branchSha(repo, branch));
}
