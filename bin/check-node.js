// Refuses to run on a Node.js older than package.json's "engines" (>= 22.19), with what to do,
// before any of Sluice is loaded: on an older Node it fails far from the cause (an unknown `.ts`
// extension at `npm run build`, `api.isRawJSON is not a function` at `npm start`).
// It must parse and run on old Node, so nothing newer than ES2017 here.
/* global process */
var MINIMUM = [22, 19];
var parts = process.versions.node.split(".");
var major = Number(parts[0]);
var minor = Number(parts[1]);
if (major < MINIMUM[0] || (major === MINIMUM[0] && minor < MINIMUM[1])) {
  process.stderr.write(
    "sluice: Node.js " +
      MINIMUM.join(".") +
      " or newer is needed; this is Node.js " +
      process.version +
      " (" +
      process.execPath +
      ").\n" +
      "In the Sluice repository, run\n" +
      '  export PATH="$(scripts/node.sh):$PATH"\n' +
      "(scripts/node.sh installs Node.js 24 into ~/.cache/sluice-node and prints its bin directory), then run npm ci and the command again.\n",
  );
  process.exit(1);
}
