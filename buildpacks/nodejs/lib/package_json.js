// Answers the Node.js buildpack's questions about a package.json, with the stack's node (the
// build has no jq): `node package_json.js FILE QUESTION [ARG]`.
//   valid               exit 0, or print why the file is not valid JSON and exit 2
//   engine              print engines.node (nothing when absent)
//   script NAME         exit 0 when scripts.NAME is a command, else 1
//   dev-dependencies    exit 0 when devDependencies lists any package, else 1
//   satisfies VERSION   exit 0 when VERSION meets engines.node, 1 when not, 3 when it
//                       cannot tell (a range semver.js cannot read)
"use strict";
const fs = require("fs");
const semver = require("./semver.js");

const [file, question, arg] = process.argv.slice(2);
let pkg;
try {
  pkg = JSON.parse(fs.readFileSync(file, "utf8"));
  if (pkg === null || typeof pkg !== "object" || Array.isArray(pkg)) {
    throw new Error("the top level must be an object");
  }
} catch (error) {
  console.log(error.message);
  process.exit(2);
}

const engine = pkg.engines && typeof pkg.engines.node === "string" ? pkg.engines.node : "";

switch (question) {
  case "valid":
    process.exit(0);
    break;
  case "engine":
    console.log(engine);
    break;
  case "script":
    process.exit(pkg.scripts && typeof pkg.scripts[arg] === "string" ? 0 : 1);
    break;
  case "dev-dependencies":
    process.exit(pkg.devDependencies && Object.keys(pkg.devDependencies).length > 0 ? 0 : 1);
    break;
  case "satisfies": {
    if (!semver.validRange(engine)) process.exit(3);
    process.exit(semver.satisfies(arg, engine) ? 0 : 1);
    break;
  }
  default:
    console.error(`unknown question ${question}`);
    process.exit(64);
}
