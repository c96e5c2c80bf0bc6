/** Where the configuration lives in a repository. */
export const CONFIG_PATH = ".github/sluice.yml";
