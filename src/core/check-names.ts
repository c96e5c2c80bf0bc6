/**
 * The names of Sluice's check runs, and reading them back: a button press on a check run names
 * the run, and the environment it deploys is read from that name here, beside where it is made.
 */

const DEPLOY_PREFIX = "sluice/deploy (";
const DEPLOY_SUFFIX = ")";

/** The name of an environment's deploy check run. */
export function deployCheckName(environment: string): string {
  return `${DEPLOY_PREFIX}${environment}${DEPLOY_SUFFIX}`;
}

/**
 * The environment a deploy check run's name ({@link deployCheckName}) names, or undefined when
 * `name` is not a deploy check run's (another check run, an empty environment, or one that spans
 * lines, which no configured environment's name does).
 */
export function parseDeployCheckName(name: string): string | undefined {
  if (!name.startsWith(DEPLOY_PREFIX) || !name.endsWith(DEPLOY_SUFFIX)) return undefined;
  const environment = name.slice(DEPLOY_PREFIX.length, name.length - DEPLOY_SUFFIX.length);
  return environment.length > 0 && !/[\n\r\u2028\u2029]/.test(environment) ? environment : undefined;
}

/** The name of an environment's drift check run. */
export function driftCheckName(environment: string): string {
  return `sluice/drift (${environment})`;
}
